import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { resolve } from "node:path";

/** The repository's root. */
export const root: string = resolve(import.meta.dirname, "..", "..");

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

/** A server running in its own process. */
export interface ServerProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** The WebSocket URL it printed. */
  readonly url: string;
  /** Everything it printed so far. */
  output(): string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts `command` with `PORT` set to a free port (also put where `{port}` appears in it)
 * and waits until it prints `ws://127.0.0.1:PORT/...` (or wrangler's `Ready on`); fails
 * with its output if it exits or takes longer than `ms`.
 */
export async function startServer(
  command: string[],
  {
    timeout: ms = 20_000,
    port: fixedPort,
    env = {},
  }: { timeout?: number; port?: number; env?: Record<string, string> } = {},
): Promise<ServerProcess> {
  const port = fixedPort ?? (await freePort());
  const [file, ...args] = command.map((part) => part.replaceAll("{port}", String(port))) as [
    string,
    ...string[],
  ];
  const child = spawn(file, args, {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      NO_COLOR: "1",
      WRANGLER_SEND_METRICS: "false",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const url = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`no address within ${ms} ms:\n${output}`)), ms);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      // A WebSocket URL, or wrangler's "Ready on http://127.0.0.1:PORT".
      const match = /(ws:\/\/127\.0\.0\.1:\d+\/\S*)|Ready on http:\/\/(127\.0\.0\.1:\d+)/.exec(
        output,
      );
      if (match) {
        clearTimeout(timer);
        done(match[1] ?? `ws://${match[2]}/`);
      }
    };
    child.stdout?.on("data", read);
    child.stderr?.on("data", read);
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`exited with ${code} before serving:\n${output}`));
    });
  });
  return {
    child,
    port,
    url,
    output: () => output,
    async stop() {
      // Already gone (also when killed by a signal, which leaves exitCode null).
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      const [code] = (await exited) as [number | null];
      clearTimeout(timer);
      return code;
    },
  };
}

/** Starts tests/servers/load-server.ts (with `gc` exposed, for its heap figures). */
export function startLoadServer(): Promise<ServerProcess> {
  return startServer([
    process.execPath,
    "--expose-gc",
    "--import",
    "tsx",
    "tests/servers/load-server.ts",
  ]);
}
