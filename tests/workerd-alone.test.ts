// Workers against workerd itself: the workerd binary run with a capnp config of its own,
// without wrangler's or miniflare's proxy in front (they negotiate compression with the
// client on their own). Without the `no_web_socket_compression` flag workerd negotiates
// permessage-deflate whatever the Worker answers, and the adapter says so; with it (as every
// template ships) a client cannot compress, and a compressed frame is refused.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { COMPRESSION_WARNING } from "../adapters/cloudflare/compression.ts";
import { compressedFrame } from "./helpers/compressed-frame.ts";
import { freePort, root } from "./helpers/server-process.ts";

/** The binary of this platform, as the `workerd` package (wrangler's and miniflare's) finds it. */
const WORKERD = (createRequire(import.meta.url)("workerd") as { default: string }).default;

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "workerd-alone-"));
  for (const [file, compression] of [
    ["worker.js", false],
    ["worker-compression.js", true],
  ] as const) {
    await build({
      entryPoints: [join(root, "tests", "servers", "workerd-alone.ts")],
      bundle: true,
      format: "esm",
      platform: "neutral",
      conditions: ["workerd", "worker", "browser"],
      mainFields: ["module", "main"],
      external: ["cloudflare:*"],
      outfile: join(dir, file),
      logLevel: "silent",
      define: compression ? { WORKER_COMPRESSION: "true" } : {},
    });
  }
}, 30_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** workerd serving the test Worker with these compatibility flags, on a free port. */
async function workerd(
  flags: string[],
  script = "worker.js",
): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const name = `config-${flags.length}-${script}.capnp`;
  await writeFile(
    join(dir, name),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .worker) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [ (name = "worker.js", esModule = embed "${script}") ],
  compatibilityDate = "2026-04-20",
  compatibilityFlags = [${flags.map((flag) => JSON.stringify(flag)).join(", ")}],
  durableObjectNamespaces = [
    (className = "SocketAPIObject", uniqueKey = "socketapi-workerd-alone", enableSql = true),
  ],
  durableObjectStorage = (inMemory = void),
  bindings = [ (name = "SOCKETAPI", durableObjectNamespace = "SocketAPIObject") ],
);
`,
  );
  const child: ChildProcess = spawn(WORKERD, ["serve", join(dir, name)], { stdio: "ignore" });
  const deadline = Date.now() + 15_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.end();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error("workerd did not start");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    port,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** A client offering permessage-deflate: what was negotiated, and an action's answer. */
async function offer(port: number, action: string, data?: unknown) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: true });
  const header = new Promise<string | undefined>((resolve) =>
    ws.once("upgrade", (response) => resolve(response.headers["sec-websocket-extensions"])),
  );
  await once(ws, "open");
  ws.send(JSON.stringify({ type: "action", channel: action, data, id: 1 }));
  const [answer] = await once(ws, "message");
  ws.close();
  return { header: await header, extensions: ws.extensions, answer: JSON.parse(String(answer)) };
}

describe("workerd alone, without the no_web_socket_compression flag", () => {
  it("negotiates permessage-deflate whatever the Worker answers, and the adapter says so", async () => {
    const served = await workerd([]);
    try {
      const first = await offer(served.port, "add_numbers", { a: 2, b: 3 });
      expect(first.answer).toMatchObject({ status: "completed", data: 5 });
      // The danger: an empty Sec-WebSocket-Extensions from the Worker refused nothing.
      expect(first.header).toContain("permessage-deflate");
      expect(first.extensions).toContain("permessage-deflate");
      // 30 MiB of text cross the wire as about 30 KB, and the object inflates them whole
      // before its maxMessageBytes (64 KiB) can refuse them.
      const bomb = new WebSocket(`ws://127.0.0.1:${served.port}/`, { perMessageDeflate: true });
      await once(bomb, "open");
      const socket = (bomb as unknown as { _socket: { bytesWritten: number } })._socket;
      const before = socket.bytesWritten;
      bomb.send(
        `{"type":"action","channel":"add_numbers","data":"${"a".repeat(30 * 1024 * 1024)}"}`,
      );
      const [refusal] = await once(bomb, "message");
      expect(socket.bytesWritten - before).toBeLessThan(100 * 1024);
      expect(JSON.parse(String(refusal))).toMatchObject({
        code: "MESSAGE_TOO_LARGE",
        message: "Message exceeds 65536 bytes.",
      });
      bomb.close();
      const told = await offer(served.port, "told");
      expect(told.answer.data).toContain(COMPRESSION_WARNING);
      // Once per isolate, not per connection.
      expect(
        told.answer.data.filter((m: string) => m === COMPRESSION_WARNING).length,
      ).toBeLessThanOrEqual(2);
    } finally {
      await served.stop();
    }
  }, 30_000);
});

describe("workerd alone, with the app's compression and without the flag", () => {
  it("compresses what it sends, holds inflated frames to 32 MiB, and warns of nothing", async () => {
    const served = await workerd([], "worker-compression.js");
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${served.port}/`, { perMessageDeflate: true });
      await once(ws, "open");
      expect(ws.extensions).toContain("permessage-deflate");
      const socket = (ws as unknown as { _socket: { bytesRead: number; bytesWritten: number } })
        ._socket;
      const read = socket.bytesRead;
      ws.send(JSON.stringify({ type: "action", channel: "text", data: 16_000 }));
      const [answer] = await once(ws, "message");
      expect(JSON.parse(String(answer)).data).toHaveLength(16_000);
      // 16 KB of text crossed the wire compressed.
      expect(socket.bytesRead - read).toBeLessThan(1024);
      // 30 MiB inflated: read whole by the runtime, refused by maxMessageBytes.
      ws.send(`{"type":"action","channel":"text","data":"${"a".repeat(30 * 1024 * 1024)}"}`);
      const [refusal] = await once(ws, "message");
      expect(JSON.parse(String(refusal))).toMatchObject({ code: "MESSAGE_TOO_LARGE" });
      // 34 MiB inflated: past the runtime's 32 MiB, the socket is closed with 1009.
      const written = socket.bytesWritten;
      const closed = once(ws, "close");
      ws.send(`{"type":"action","channel":"text","data":"${"a".repeat(34 * 1024 * 1024)}"}`);
      const [code] = await closed;
      expect(socket.bytesWritten - written).toBeLessThan(100 * 1024);
      expect(code).toBe(1009);
      expect((await offer(served.port, "told")).answer.data).toEqual([]);
    } finally {
      await served.stop();
    }
  }, 30_000);
});

describe("workerd alone, with the no_web_socket_compression flag the templates ship", () => {
  it("negotiates no compression, refuses a compressed frame with 1002, and warns of nothing", async () => {
    const served = await workerd(["no_web_socket_compression"]);
    try {
      const plain = await offer(served.port, "add_numbers", { a: 2, b: 3 });
      expect(plain.answer).toMatchObject({ status: "completed", data: 5 });
      expect(plain.header).toBeUndefined();
      expect(plain.extensions).toBe("");
      // A frame marked compressed (1 KB that would inflate to 1 MiB) never reaches the app.
      expect(await compressedFrame(served.port)).toBe(1002);
      expect((await offer(served.port, "told")).answer.data).toEqual([]);
    } finally {
      await served.stop();
    }
  }, 30_000);

  it("is in every wrangler.toml and wrangler block the project ships and documents", async () => {
    const files = ["wrangler.toml", "tests/servers/wrangler.toml", "tests/workers/wrangler.toml"];
    for (const file of files) {
      expect(await readFile(join(root, file), "utf8"), file).toMatch(
        /^compatibility_flags = \[.*"no_web_socket_compression".*\]$/m,
      );
    }
    const docs = await readFile(join(root, "docs", "cloudflare.md"), "utf8");
    const blocks = [...docs.matchAll(/```toml\n([\s\S]*?)```/g)].map((match) => match[1] ?? "");
    const configs = blocks.filter((block) => block.includes("compatibility_date"));
    expect(configs.length).toBeGreaterThan(0);
    for (const block of configs) expect(block).toContain("no_web_socket_compression");
  });
});
