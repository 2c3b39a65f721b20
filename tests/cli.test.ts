// The `socketapi` command, run as a user runs it: a real process serving a module.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { openClient } from "./helpers/ws-client.ts";

const root = resolve(import.meta.dirname, "..");
const cli = join(root, "adapters", "node-cli.js");
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
});

interface Running {
  child: ChildProcess;
  output: () => string;
  url: Promise<string>;
}

/** Starts the command; `url` resolves with the address it prints once it serves. */
function run(args: string[], env: Record<string, string> = {}): Running {
  const child = spawn(process.execPath, [cli, ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let output = "";
  const url = new Promise<string>((resolveUrl, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /at (ws:\/\/\S+)/.exec(output);
      if (match?.[1]) resolveUrl(match[1]);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`exited with ${code}: ${output}`)));
  });
  url.catch(() => {});
  return { child, output: () => output, url };
}

describe("socketapi command", () => {
  it("serves a TypeScript module's default export on the given port", async () => {
    const server = run(["examples/main.ts", "--port", "0"]);
    const url = await server.url;
    expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/$/);
    const client = await openClient(url);
    expect(
      await client.request({ type: "action", channel: "add_numbers", data: { a: 5, b: 3 } }),
    ).toEqual({
      type: "action",
      channel: "add_numbers",
      status: "completed",
      data: 8,
    });
  });

  it("serves the dashboard with --admin: a token made for the run and printed, or $SOCKETAPI_ADMIN_TOKEN's", async () => {
    const made = run(["examples/main.ts", "--port", "0", "--admin"], { SOCKETAPI_ADMIN_TOKEN: "" });
    const host = new URL(await made.url).host;
    const until = Date.now() + 5000;
    while (!/admin at http:\/\/\S+\?token=\S+/.test(made.output()) && Date.now() < until) {
      await new Promise((resolveWait) => setTimeout(resolveWait, 50));
    }
    const printed = /admin at (http:\/\/\S+\?token=\S+)/.exec(made.output())?.[1] ?? "";
    expect(printed).toMatch(new RegExp(`^http://${host}/admin\\?token=[\\w-]{32}$`));
    expect((await fetch(`http://${host}/admin`)).status).toBe(401);
    expect((await fetch(printed, { redirect: "manual" })).status).toBe(303);

    const chosen = run(["examples/main.ts", "--port", "0", "--admin"], {
      SOCKETAPI_ADMIN_TOKEN: "chosen-token-0123456789",
    });
    const chosenHost = new URL(await chosen.url).host;
    const page = await fetch(`http://${chosenHost}/admin`, {
      headers: { authorization: "Bearer chosen-token-0123456789" },
    });
    expect(page.status).toBe(200);
    expect(chosen.output()).not.toContain("chosen-token");
  });

  it("lists every worker of --workers 2 --admin on the dashboard (their samples over the primary)", async () => {
    const token = "workers-token-0123456789";
    const server = run(["examples/main.ts", "--port", "0", "--workers", "2", "--admin"], {
      SOCKETAPI_ADMIN_TOKEN: token,
    });
    const url = await server.url;
    const page = await openClient(url.replace(/\/$/, "/admin"), {
      cookie: `socketapi_admin=${token}`,
    });
    page.send({ type: "subscribe", channel: "stats", id: 1 });
    const until = Date.now() + 15_000;
    let instances = 0;
    while (instances < 2 && Date.now() < until) {
      const view = await page.take(
        (frame) => frame.type === "data" && frame.data,
        until - Date.now(),
      );
      instances = view.data.instances.length;
    }
    expect(instances).toBe(2);
    page.ws.terminate();
  }, 30_000);

  it("takes the port from PORT when --port is not given", async () => {
    const server = run(["examples/main.ts"], { PORT: "0" });
    expect(await server.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/$/);
  });

  it("shuts down gracefully on SIGTERM: clients see 1001 and the process exits 0", async () => {
    const server = run(["examples/main.ts", "--port", "0"]);
    const client = await openClient(await server.url);
    server.child.kill("SIGTERM");
    expect(await client.closed).toEqual({ code: 1001, reason: "Server shutting down" });
    const [code] = await once(server.child, "exit");
    expect(code).toBe(0);
  });

  it("explains its usage and exits 2 without a module", async () => {
    const server = run([]);
    const [code] = await once(server.child, "exit");
    expect(code).toBe(2);
    expect(server.output()).toContain("Usage: socketapi MODULE");
  });

  it("exits 1 when the module exports no app", async () => {
    const dir = await mkdtemp(join(tmpdir(), "socketapi-cli-"));
    try {
      await writeFile(join(dir, "empty.ts"), "export const nothing = 1;\n");
      const server = run([join(dir, "empty.ts"), "--port", "0"]);
      const [code] = await once(server.child, "exit");
      expect(code).toBe(1);
      expect(server.output()).toContain("must export a SocketAPI app");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("restarts with --watch when the module changes", async () => {
    const dir = await mkdtemp(join(tmpdir(), "socketapi-watch-"));
    const index = pathToFileURL(join(root, "src", "index.ts")).href;
    const module = (answer: number) =>
      `import { SocketAPI } from ${JSON.stringify(index)};\n` +
      `export default new SocketAPI().action("answer", () => ${answer});\n`;
    try {
      await writeFile(join(dir, "app.ts"), module(1));
      const server = run([join(dir, "app.ts"), "--port", "0", "--watch"]);
      const first = await openClient(await server.url);
      expect((await first.request({ type: "action", channel: "answer" })).data).toBe(1);
      const before = server.output().length;
      await writeFile(join(dir, "app.ts"), module(2));
      // The restarted server prints its address again.
      const deadline = Date.now() + 10_000;
      let url: string | undefined;
      while (!url && Date.now() < deadline) {
        url = /at (ws:\/\/\S+)/.exec(server.output().slice(before))?.[1];
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(url).toBeDefined();
      const second = await openClient(url as string);
      expect((await second.request({ type: "action", channel: "answer" })).data).toBe(2);
      server.child.kill("SIGTERM");
      await once(server.child, "exit");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
