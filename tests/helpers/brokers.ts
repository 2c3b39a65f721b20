import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { freePort } from "./server-process.ts";

/** A message broker the tests run themselves, on a free port, to kill and start again. */
export interface Broker {
  readonly kind: "redis" | "nats";
  readonly port: number;
  /** The URL a relay connects to (with the credentials, when it has some). */
  readonly url: string;
  /** Kills it (SIGKILL: no goodbye to its clients). */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  /** Stops it in its tracks (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void;
  /** Lets it go on (SIGCONT). */
  resume(): void;
}

/** Debian's package and binary of each broker, and of nginx. */
const BINARIES = {
  nginx: { packageName: "nginx", paths: ["/usr/sbin/nginx", "/usr/bin/nginx"] },
  redis: {
    packageName: "redis-server",
    paths: ["/usr/bin/redis-server", "/usr/local/bin/redis-server"],
  },
  nats: {
    packageName: "nats-server",
    paths: ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"],
  },
} as const;

/**
 * The broker's binary, installed with apt-get when missing and the tests run as root (as in
 * CI); otherwise the error says what to install.
 */
function binary(kind: keyof typeof BINARIES): string {
  const { packageName, paths } = BINARIES[kind];
  const found = () => paths.find((path) => existsSync(path));
  if (!found() && process.getuid?.() === 0) {
    execFileSync("apt-get", ["update"], { stdio: "ignore", timeout: 300_000 });
    execFileSync("apt-get", ["install", "-y", "--no-install-recommends", packageName], {
      stdio: "ignore",
      timeout: 600_000,
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  }
  const path = found();
  if (!path) throw new Error(`${packageName} is not installed: apt-get install ${packageName}`);
  return path;
}

/** nginx, installed with apt-get when missing and the tests run as root; else `undefined`. */
export function ensureNginx(): string | undefined {
  try {
    return binary("nginx");
  } catch {
    return undefined;
  }
}

/** Resolves once something listens on `port` and says hello (NATS) or answers a PING (Redis). */
async function answering(port: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => socket.write("PING\r\n"));
      socket.once("data", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
      socket.setTimeout(1000, () => {
        socket.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing answers on port ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function run(kind: Broker["kind"], args: string[], port: number): Promise<ChildProcess> {
  const child = spawn(binary(kind), args, { stdio: "ignore" });
  const exited = once(child, "exit").then(([code]) => {
    throw new Error(`${kind} exited with ${code} on port ${port}`);
  });
  await Promise.race([answering(port), exited]);
  exited.catch(() => {});
  return child;
}

function broker(kind: Broker["kind"], port: number, url: string, args: string[]): Promise<Broker> {
  let child: ChildProcess | undefined;
  const self: Broker = {
    kind,
    port,
    url,
    async kill() {
      const running = child;
      child = undefined;
      if (!running || running.exitCode !== null) return;
      const exited = once(running, "exit");
      running.kill("SIGKILL");
      await exited;
    },
    async restart() {
      await self.kill();
      child = await run(kind, args, port);
    },
    pause() {
      child?.kill("SIGSTOP");
    },
    resume() {
      child?.kill("SIGCONT");
    },
  };
  return self.restart().then(() => self);
}

/** A `redis-server` of its own, without persistence; with `password`, clients must give it. */
export async function startRedis({ password }: { password?: string } = {}): Promise<Broker> {
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  if (password) args.push("--requirepass", password);
  const url = `redis://${password ? `:${password}@` : ""}127.0.0.1:${port}`;
  return broker("redis", port, url, args);
}

/**
 * A `nats-server` of its own; with `user` and `password`, clients must give them; with
 * `monitor`, its HTTP monitoring endpoint on a free port (`monitorUrl`: `/subsz`, `/connz`).
 */
export async function startNats({
  user,
  password,
  monitor = false,
}: {
  user?: string;
  password?: string;
  monitor?: boolean;
} = {}): Promise<Broker & { readonly monitorUrl: string | undefined }> {
  const port = await freePort();
  const args = ["-a", "127.0.0.1", "-p", String(port)];
  if (user && password) args.push("--user", user, "--pass", password);
  let monitorUrl: string | undefined;
  if (monitor) {
    const monitorPort = await freePort();
    args.push("-m", String(monitorPort));
    monitorUrl = `http://127.0.0.1:${monitorPort}`;
  }
  const url = `nats://${user && password ? `${user}:${password}@` : ""}127.0.0.1:${port}`;
  return Object.assign(await broker("nats", port, url, args), { monitorUrl });
}

/** Stops every broker given, whatever state it is in. */
export async function killAll(brokers: readonly (Broker | undefined)[]): Promise<void> {
  await Promise.all(brokers.map((b) => b?.kill()));
}
