// permessage-deflate, opt-in (`compression`), over real sockets on every runtime that has
// it: what is negotiated, what crosses the wire, and the bound on what a compressed frame
// inflates to: maxMessageBytes (128 KiB here) answered MESSAGE_TOO_LARGE, past four times
// it (the runtime's hard limit) the socket closed with 1009 before the frame is inflated
// whole. Workers are in tests/workerd-alone.test.ts (workerd alone, without wrangler's
// proxy, which negotiates on its own).
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bunCapabilities, denoCapabilities, nodeCapabilities } from "../adapters/capabilities.ts";
import { deflatedFrames } from "../adapters/node/socket.ts";
import { serve } from "../adapters/node.ts";
import { compressedFrame } from "./helpers/compressed-frame.ts";
import { root, type ServerProcess, startServer } from "./helpers/server-process.ts";
import { openClient, type WsClient } from "./helpers/ws-client.ts";
import app from "./servers/compression-app.ts";

const bin = (name: string) => join(root, "node_modules", ".bin", name);
const deno = [bin("deno"), "run", "--allow-net", "--allow-env", "--allow-read"];

const runtimes = [
  {
    name: "Node",
    command: [process.execPath, "--import", "tsx", "tests/servers/compression-node.ts"],
    compression: nodeCapabilities.compression,
    // What `ws` answers: both windows bounded, no context kept.
    extensions: [
      "permessage-deflate",
      "client_max_window_bits=10",
      "server_no_context_takeover",
      "client_no_context_takeover",
      "server_max_window_bits=10",
    ],
  },
  {
    name: "Bun",
    command: [bin("bun"), "tests/servers/compression-bun.ts"],
    compression: bunCapabilities.compression,
    extensions: ["permessage-deflate", "server_no_context_takeover", "client_no_context_takeover"],
  },
  {
    name: "socketapi/node on Deno",
    command: [...deno, "tests/servers/compression-node.ts"],
    compression: nodeCapabilities.compression,
    extensions: ["permessage-deflate", "server_no_context_takeover", "client_no_context_takeover"],
  },
  {
    name: "Deno",
    command: [...deno, "tests/servers/compression-deno.ts"],
    compression: denoCapabilities.compression,
    extensions: [],
  },
];

const KIB = 1024;
const MIB = 1024 * KIB;

describe.each(runtimes)("$name", ({ command, compression, extensions }) => {
  let server: ServerProcess;
  const clients: WsClient[] = [];
  const open = async () => {
    const client = await openClient(`ws://127.0.0.1:${server.port}/`, {}, undefined, {
      perMessageDeflate: true,
    });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    server = await startServer(command);
  }, 30_000);

  afterAll(async () => {
    for (const client of clients) client.ws.terminate();
    await server?.stop();
  });

  it("negotiates permessage-deflate as stated, or nothing where the runtime cannot", async () => {
    const client = await open();
    const negotiated = (client.extensionsHeader ?? "").split(/;\s*/).filter(Boolean);
    for (const part of extensions) expect(negotiated).toContain(part);
    if (extensions.length === 0) expect(negotiated).toEqual([]);
  });

  it.runIf(compression)(
    "sends a 16 KB answer compressed, and a short one as it is (skipped where the runtime has no permessage-deflate)",
    async () => {
      const client = await open();
      let before = client.wire.read;
      const large = await client.request({
        type: "action",
        channel: "text",
        data: { count: 16_000 },
      });
      expect((large.data as string).length).toBe(16_000);
      expect(client.wire.read - before).toBeLessThan(1 * KIB);
      before = client.wire.read;
      const small = await client.request({ type: "action", channel: "text", data: { count: 500 } });
      expect((small.data as string).length).toBe(500);
      // Under the 1024-character threshold: the frame's own bytes (and its header).
      expect(client.wire.read - before).toBeGreaterThan(500);
    },
  );

  it.runIf(compression)(
    "deflates a broadcast for every subscriber (skipped where the runtime has no permessage-deflate)",
    async () => {
      const subscribers = await Promise.all(Array.from({ length: 5 }, open));
      for (const subscriber of subscribers) {
        const reply = await subscriber.request({ type: "subscribe", channel: "feed" });
        expect(reply).toMatchObject({
          type: "subscribed",
        });
      }
      const reads = subscribers.map((subscriber) => subscriber.wire.read);
      const sender = await open();
      expect(
        await sender.request({ type: "action", channel: "broadcast", data: { count: 16_000 } }),
      ).toMatchObject({ status: "completed" });
      for (const [i, subscriber] of subscribers.entries()) {
        const frame = await subscriber.take((f) => f.type === "data");
        expect((frame.data as string).length).toBe(16_000);
        expect(subscriber.wire.read - (reads[i] as number)).toBeLessThan(1 * KIB);
      }
    },
  );

  it.runIf(compression)(
    "answers MESSAGE_TOO_LARGE for a frame that inflates past maxMessageBytes, and stays open (skipped where the runtime has no permessage-deflate)",
    async () => {
      const client = await open();
      const before = client.wire.written;
      const answer = await client.request({
        type: "action",
        channel: "echo",
        data: { text: "a".repeat(200 * KIB) },
      });
      expect(client.wire.written - before).toBeLessThan(2 * KIB);
      expect(answer).toEqual({
        type: "error",
        code: "MESSAGE_TOO_LARGE",
        message: "Message exceeds 131072 bytes.",
      });
      expect(
        await client.request({ type: "action", channel: "echo", data: { text: "still open" } }),
      ).toMatchObject({ status: "completed", data: 10 });
    },
  );

  it.runIf(compression)(
    "closes with 1009 on 30 KB that inflate to 30 MiB, without inflating them whole (skipped where the runtime has no permessage-deflate)",
    async () => {
      const watcher = await open();
      const rss = async () =>
        (await watcher.request({ type: "action", channel: "rss" })).data as number;
      const rssBefore = await rss();
      const bomb = await open();
      const before = bomb.wire.written;
      bomb.sendRaw(`{"type":"action","channel":"echo","data":{"text":"${"a".repeat(30 * MIB)}"}}`);
      const { code } = await bomb.closed;
      expect(code).toBe(1009);
      // What crossed the wire: about 30 KB (deflate's best is about 1:1000).
      expect(bomb.wire.written - before).toBeLessThan(100 * KIB);
      // The server stopped at 512 KiB inflated: its memory grew by far less than 30 MiB.
      expect((await rss()) - rssBefore).toBeLessThan(16 * MIB);
    },
  );

  it.runIf(!compression)(
    "drops a connection that sends a frame marked compressed (skipped where permessage-deflate is negotiated)",
    async () => {
      // Nothing was negotiated: RSV1 is a protocol error; Deno ends the TCP connection
      // without a close frame, and the frame never reaches the app.
      expect(await compressedFrame(server.port)).toBe("dropped");
    },
  );
});

describe("Node, in this process", () => {
  it("deflates a broadcast once for its 20 subscribers, and an answer once", async () => {
    const server = await serve(app, { port: 0 });
    const clients: WsClient[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const client = await openClient(server.url, {}, undefined, {
          perMessageDeflate: true,
        });
        clients.push(client);
        await client.request({ type: "subscribe", channel: "feed" });
      }
      const sender = await openClient(server.url, {}, undefined, {
        perMessageDeflate: true,
      });
      clients.push(sender);
      const before = deflatedFrames();
      await sender.request({ type: "action", channel: "broadcast", data: { count: 16_000 } });
      // The 20 subscribers (the sender, last, is not one).
      for (const client of clients.slice(0, 20))
        await client.take((frame) => frame.type === "data");
      // One deflate for the 20 data frames; the sender's short `completed` (under the
      // threshold) went out as it is.
      expect(deflatedFrames() - before).toBe(1);
      await sender.request({ type: "action", channel: "text", data: { count: 16_000 } });
      expect(deflatedFrames() - before).toBe(2);
    } finally {
      for (const client of clients) client.ws.terminate();
      await server.close();
    }
  });
});
