// One conformance suite, written once, replayed over real sockets against a real process
// of every runtime setup. A capability a runtime lacks is skipped by name, with its reason.

import { once } from "node:events";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import {
  bunCapabilities,
  denoCapabilities,
  nodeCapabilities,
  workersCapabilities,
} from "../adapters/capabilities.ts";
import { createClient } from "../src/client/index.ts";
import { msgpack } from "../src/msgpack.ts";
import type { Frame } from "./helpers/fake-client.ts";
import { root, type ServerProcess, startServer } from "./helpers/server-process.ts";
import { openClient, WsClient } from "./helpers/ws-client.ts";
import type conformanceApp from "./servers/conformance-app.ts";

const bin = (name: string) => join(root, "node_modules", ".bin", name);
const tsx = [process.execPath, "--import", "tsx"];

const runtimes = [
  {
    name: "Node",
    command: [...tsx, "tests/servers/node.ts"],
    capabilities: nodeCapabilities,
    hono: false,
  },
  {
    name: "Bun",
    command: [bin("bun"), "tests/servers/bun.ts"],
    capabilities: bunCapabilities,
    hono: false,
  },
  {
    name: "Deno",
    command: [
      bin("deno"),
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "tests/servers/deno.ts",
    ],
    capabilities: denoCapabilities,
    hono: false,
  },
  {
    // Deno's Node compatibility running socketapi/node: what Deno offers for a hard frame
    // limit (Deno.upgradeWebSocket has none).
    name: "socketapi/node on Deno",
    command: [
      bin("deno"),
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "tests/servers/node.ts",
    ],
    capabilities: nodeCapabilities,
    hono: false,
  },
  {
    name: "Hono on Node",
    command: [...tsx, "tests/servers/hono-node.ts"],
    capabilities: nodeCapabilities,
    hono: true,
  },
  {
    name: "Hono on Bun",
    command: [bin("bun"), "tests/servers/hono-bun.ts"],
    capabilities: bunCapabilities,
    hono: true,
  },
  {
    name: "Hono on Deno",
    command: [
      bin("deno"),
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "tests/servers/hono-deno.ts",
    ],
    capabilities: denoCapabilities,
    hono: true,
  },
  {
    name: "Workers (wrangler dev)",
    command: [
      bin("wrangler"),
      "dev",
      "--config",
      "tests/servers/wrangler.toml",
      "--ip",
      "127.0.0.1",
      "--port",
      "{port}",
    ],
    capabilities: workersCapabilities,
    hono: false,
  },
];

/** Each runtime twice: in JSON, and in MessagePack (`socketapi.msgpack`, offered first). */
const suites = runtimes.flatMap((runtime) => [
  { ...runtime, codec: undefined, label: runtime.name },
  { ...runtime, codec: msgpack, label: `${runtime.name}, MessagePack` },
]);

const LIMIT = 64 * 1024;
const NOT_UNICODE = "Channel must be well-formed Unicode (it holds a lone surrogate).";

describe.each(suites)("$label", ({ command, capabilities, hono, codec }) => {
  let server: ServerProcess;
  const clients: WsClient[] = [];
  const open = async (path = "", headers?: Record<string, string>) => {
    const client = await openClient(`ws://127.0.0.1:${server.port}/${path}`, headers, undefined, {
      codec,
    });
    clients.push(client);
    return client;
  };
  const http = (path: string, init?: RequestInit) =>
    fetch(`http://127.0.0.1:${server.port}${path}`, init);

  beforeAll(async () => {
    server = await startServer(command);
  }, 30_000);

  afterAll(async () => {
    for (const client of clients) client.ws.terminate();
    await server?.stop();
  });

  it.runIf(codec !== undefined)(
    "speaks MessagePack to a client that offers it: binary frames, bytes as bytes (skipped in JSON)",
    async () => {
      const client = await open();
      expect(client.ws.protocol).toBe("socketapi.msgpack");
      const bytes = new Uint8Array([7, 8, 9, 10]);
      const received: { data: unknown; binary: boolean }[] = [];
      client.ws.on("message", (data, binary) => {
        if (binary) received.push({ data: msgpack.decode(data as Buffer), binary });
      });
      client.send({ type: "action", channel: "bytes", data: { data: bytes }, id: 1 });
      await client.next();
      expect(received).toHaveLength(1);
      const answer = received[0]?.data as { data: { length: number; head: Uint8Array } };
      expect(answer.data.length).toBe(4);
      // MessagePack bin, decoded as bytes, not an object of indices nor base64.
      expect(answer.data.head).toBeInstanceOf(Uint8Array);
      expect([...answer.data.head]).toEqual([7, 8, 9]);
      // Within the suite's connection limit for the tests that follow.
      client.ws.close();
      await client.closed;
    },
  );

  it.runIf(codec !== undefined)(
    "answers malformed MessagePack with INVALID_MESSAGE, and one past the limit with MESSAGE_TOO_LARGE, and stays open (skipped in JSON)",
    async () => {
      const client = await open();
      // A map of two entries that ends before them.
      client.sendRaw(Buffer.from([0x82, 0xa4]), true);
      expect(await client.next()).toEqual({
        type: "error",
        code: "INVALID_MESSAGE",
        message: "Invalid MessagePack.",
      });
      // A number, not a map: the same check and text as JSON's.
      client.sendRaw(Buffer.from([0x01]), true);
      expect(await client.next()).toEqual({
        type: "error",
        code: "INVALID_MESSAGE",
        message: "Message must be a JSON object.",
      });
      client.sendRaw(
        Buffer.from(
          msgpack.encode({ type: "action", channel: "add_numbers", data: "é".repeat(LIMIT / 2) }),
        ),
        true,
      );
      expect(await client.next()).toEqual({
        type: "error",
        code: "MESSAGE_TOO_LARGE",
        message: `Message exceeds ${LIMIT} bytes.`,
      });
      // Text frames are still read as JSON on a MessagePack connection; answers are binary.
      client.sendRaw('{"type":"action","channel":"add_numbers","data":{"a":2,"b":5}}');
      expect((await client.next()).data).toBe(7);
      client.ws.close();
      await client.closed;
    },
  );

  it("carries a broadcast's bytes to MessagePack and JSON subscribers alike", async () => {
    const url = `ws://127.0.0.1:${server.port}/`;
    const packed = await openClient(url, {}, undefined, { codec: msgpack });
    const plain = await openClient(url);
    // A JSON client sends bytes as {"$bytes": base64}.
    const sender = await openClient(url);
    try {
      const decoded: unknown[] = [];
      packed.ws.on("message", (data, binary) => {
        if (binary) decoded.push(msgpack.decode(data as Buffer));
      });
      for (const each of [packed, plain]) {
        expect(await each.request({ type: "subscribe", channel: "bin" })).toMatchObject({
          type: "subscribed",
        });
      }
      const base64 = Buffer.from([1, 2, 250]).toString("base64");
      sender.send({ type: "action", channel: "send_bytes", data: { data: { $bytes: base64 } } });
      expect(await sender.next()).toMatchObject({ status: "completed" });
      await packed.take((frame) => frame.type === "data");
      const json = await plain.take((frame) => frame.type === "data");
      expect(json.data).toEqual({ data: { $bytes: base64 } });
      const binary = decoded.find((frame) => (frame as { type: string }).type === "data") as {
        data: { data: Uint8Array };
      };
      expect(binary.data.data).toBeInstanceOf(Uint8Array);
      expect([...binary.data.data]).toEqual([1, 2, 250]);
    } finally {
      for (const each of [packed, plain, sender]) {
        each.ws.close();
        await each.closed;
      }
    }
  });

  it.runIf(capabilities.fallback === true && !hono && codec === undefined)(
    "falls back to Server-Sent Events and POST when the WebSocket cannot open (skipped where the runtime has no fallback, under Hono, and under MessagePack)",
    async () => {
      // A WebSocket that never opens, as behind a proxy that strips the upgrade.
      class Blocked extends WebSocket {
        constructor(_url: string, protocols?: string | string[]) {
          super("ws://127.0.0.1:1/", protocols);
        }
      }
      const options = { WebSocket: Blocked, fallback: true };
      const url = `ws://127.0.0.1:${server.port}/`;
      const [speaker, listener] = [
        createClient<typeof conformanceApp>(url, options),
        createClient<typeof conformanceApp>(url, options),
      ];
      try {
        expect(await speaker.action("add_numbers", { a: 20, b: 22 })).toBe(42);
        const heard: unknown[] = [];
        const subscription = listener.subscribe("chat", (data) => heard.push(data));
        await subscription.ready;
        await speaker.action("send_message", { message: "over SSE" });
        const deadline = Date.now() + 5000;
        while (heard.length === 0 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect(heard).toEqual([{ message: "over SSE" }]);
      } finally {
        speaker.close();
        listener.close();
      }
    },
  );

  it("serves the seed example's add_numbers", async () => {
    const client = await open();
    expect(
      await client.request({ type: "action", channel: "add_numbers", data: { a: 5, b: 3 } }),
    ).toEqual({
      type: "action",
      channel: "add_numbers",
      status: "completed",
      data: 8,
    });
  });

  it("streams an action's chunks in order with its id, then completed", async () => {
    const client = await open();
    client.send({ type: "action", channel: "stream_count", data: { to: 3 }, id: "c" });
    for (const n of [1, 2, 3]) {
      expect(await client.next()).toEqual({
        type: "chunk",
        channel: "stream_count",
        data: n,
        id: "c",
      });
    }
    expect(await client.next()).toEqual({
      type: "action",
      channel: "stream_count",
      status: "completed",
      data: 3,
      id: "c",
    });
    client.ws.terminate();
  });

  it("serves the connection's other frames while a stream runs, and cancels it mid-way", async () => {
    const client = await open();
    const before = await streamState(client);
    client.send({
      type: "action",
      channel: "stream_count",
      data: { to: 1000, delay: 20 },
      id: "long",
    });
    expect(await client.next()).toMatchObject({ type: "chunk", id: "long", data: 1 });
    client.send({ type: "action", channel: "add_numbers", data: { a: 1, b: 2 }, id: "sum" });
    expect(await client.take((frame) => frame.id === "sum")).toMatchObject({ data: 3 });
    client.send({ type: "cancel", channel: "stream_count", id: "long" });
    expect(await client.take((frame) => frame.id === "long" && frame.type === "error")).toEqual({
      type: "error",
      code: "CANCELLED",
      message: "Cancelled by the client.",
      channel: "stream_count",
      id: "long",
    });
    // Its finally ran, and saw why: asked on the same connection (the same place holds it).
    const deadline = Date.now() + 3000;
    let after = await streamState(client);
    while (after.cancelled === before.cancelled && Date.now() < deadline) {
      after = await streamState(client);
    }
    expect(after.finished).toBe(before.finished + 1);
    expect(after.cancelled).toBe(before.cancelled + 1);
    client.ws.terminate();
  });

  /** What the streaming actions' generators did, as the place serving `client` counts it. */
  const streamState = async (client: WsClient) => {
    const id = `state-${Math.random()}`;
    client.send({ type: "action", channel: "stream_state", id });
    return (await client.take((frame) => frame.id === id)).data as {
      open: number;
      finished: number;
      cancelled: number;
      pulledBytes: number;
    };
  };

  it("cancels a stream before its first chunk, and answers nothing for a finished one", async () => {
    const client = await open();
    client.send({ type: "action", channel: "stream_count", data: { to: 5, delay: 300 }, id: 1 });
    client.send({ type: "cancel", channel: "stream_count", id: 1 });
    expect(await client.next()).toMatchObject({ type: "error", code: "CANCELLED", id: 1 });
    client.send({ type: "action", channel: "stream_count", data: { to: 1 }, id: 2 });
    expect(await client.next()).toMatchObject({ type: "chunk", data: 1, id: 2 });
    expect(await client.next()).toMatchObject({ type: "action", status: "completed", id: 2 });
    client.send({ type: "cancel", channel: "stream_count", id: 2 });
    await client.expectNone(200);
    client.ws.terminate();
  });

  it("stops the streams of a connection that drops: their generators finish", async () => {
    const [dropped, observer] = await Promise.all([open(), open()]);
    const before = await streamState(observer);
    for (const id of [1, 2]) {
      dropped.send({
        type: "action",
        channel: "stream_count",
        data: { to: 10_000, delay: 20 },
        id,
      });
    }
    await dropped.take((frame) => frame.type === "chunk" && frame.id === 1);
    await dropped.take((frame) => frame.type === "chunk" && frame.id === 2);
    dropped.ws.terminate();
    const deadline = Date.now() + 5000;
    let after = await streamState(observer);
    while (after.finished < before.finished + 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      after = await streamState(observer);
    }
    expect(after.finished).toBe(before.finished + 2);
    expect(after.open).toBe(before.open);
    observer.ws.terminate();
  });

  it("refuses a 17th stream of one connection, and ends a stream at streamTimeout", async () => {
    const client = await open();
    for (let id = 1; id <= 16; id++) {
      client.send({
        type: "action",
        channel: "stream_count",
        data: { to: 10_000, delay: 1000 },
        id,
      });
    }
    client.send({ type: "action", channel: "stream_count", data: { to: 1 }, id: 17 });
    expect(await client.take((frame) => frame.id === 17)).toEqual({
      type: "error",
      code: "TOO_MANY_STREAMS",
      message: "Too many streams: at most 16 at once per connection.",
      channel: "stream_count",
      id: 17,
    });
    for (let id = 2; id <= 16; id++) client.send({ type: "cancel", channel: "stream_count", id });
    for (let id = 2; id <= 16; id++) {
      await client.take((frame) => frame.id === id && frame.type === "error");
    }
    // The first runs on, a chunk a second, until the app's streamTimeout (4 s here).
    expect(await client.take((frame) => frame.id === 1 && frame.type === "error", 6000)).toEqual({
      type: "error",
      code: "HANDLER_TIMEOUT",
      message: "Stream did not finish within 4000 ms.",
      channel: "stream_count",
      id: 1,
    });
    client.ws.terminate();
  });

  it.runIf(capabilities.slowConsumers)(
    "pulls a generator that never waits only while its client reads (skipped where the send buffer is hidden)",
    async () => {
      const [reader, observer] = await Promise.all([open(), open()]);
      const before = await streamState(observer);
      (reader.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      reader.send({ type: "action", channel: "stream_flood", id: "flood" });
      // It stops once the buffers are full: the same figure twice, 300 ms apart.
      let pulled = -1;
      let now = (await streamState(observer)).pulledBytes;
      const deadline = Date.now() + 5000;
      while (now !== pulled && Date.now() < deadline) {
        pulled = now;
        await new Promise((resolve) => setTimeout(resolve, 300));
        now = (await streamState(observer)).pulledBytes;
      }
      expect(now).toBe(pulled);
      // What the kernel's buffers and the high-water mark hold, not what an unchecked
      // generator yields in a second (GBs).
      expect(now - before.pulledBytes).toBeLessThan(32 * 1024 * 1024);
      reader.ws.terminate();
      const ended = Date.now() + 5000;
      while ((await streamState(observer)).open !== before.open && Date.now() < ended) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect((await streamState(observer)).finished).toBe(before.finished + 1);
      observer.ws.terminate();
    },
  );

  it.runIf(codec === undefined)(
    "refuses a binary frame and stays open (skipped where the client speaks a codec: binary is its frames)",
    async () => {
      const client = await open();
      client.sendRaw(Buffer.from([1, 2, 3]), true);
      expect(await client.next()).toEqual({
        type: "error",
        code: "INVALID_MESSAGE",
        message: "Binary frames are not supported.",
      });
      expect(
        (await client.request({ type: "action", channel: "add_numbers", data: { a: 1, b: 1 } }))
          .data,
      ).toBe(2);
    },
  );

  it("answers a frame over the limit with MESSAGE_TOO_LARGE and stays open", async () => {
    const client = await open();
    client.sendRaw(
      JSON.stringify({ type: "action", channel: "add_numbers", data: "é".repeat(LIMIT / 2) }),
    );
    expect(await client.next()).toEqual({
      type: "error",
      code: "MESSAGE_TOO_LARGE",
      message: `Message exceeds ${LIMIT} bytes.`,
    });
    expect(
      (await client.request({ type: "action", channel: "add_numbers", data: { a: 2, b: 2 } })).data,
    ).toBe(4);
  });

  it.skipIf(!capabilities.hardFrameLimit)(
    "closes with 1009 a frame over the hard limit (skipped where the runtime reads every frame whole)",
    async () => {
      const client = await open();
      client.sendRaw("x".repeat(LIMIT * 5));
      expect((await client.closed).code).toBe(1009);
    },
  );

  it("sends a client that was away the broadcasts it missed on a channel with history, then live ones", async () => {
    const away = await open();
    const subscribed = await away.request({ type: "subscribe", channel: "journal", id: "s" });
    expect(subscribed).toMatchObject({ type: "subscribed", channel: "journal", id: "s" });
    const { offset, epoch } = subscribed as { offset: number; epoch: string };
    away.ws.terminate();
    const writer = await open();
    expect(
      await writer.request({ type: "action", channel: "write", data: { from: 0, count: 20 } }),
    ).toMatchObject({ status: "completed", data: 20 });
    const back = await open();
    const answer = await back.request({
      type: "subscribe",
      channel: "journal",
      since: { offset, epoch },
    });
    expect(answer).toEqual({
      type: "subscribed",
      channel: "journal",
      offset: offset + 20,
      epoch: expect.any(String),
      recovered: true,
    });
    // The position's own epoch; or, when nothing had been broadcast on the channel (an empty
    // stream's position, `e-...`), the one its first broadcast made.
    if (!epoch.startsWith("e-")) expect(answer.epoch).toBe(epoch);
    const missed: Frame[] = [];
    for (let i = 0; i < 20; i++) missed.push(await back.next());
    expect(missed.map((frame) => frame.data)).toEqual(
      Array.from({ length: 20 }, (_, n) => ({ n })),
    );
    expect(missed.map((frame) => frame.offset)).toEqual(
      Array.from({ length: 20 }, (_, i) => offset + 1 + i),
    );
    await writer.request({ type: "action", channel: "write", data: { from: 20, count: 1 } });
    expect(await back.next()).toEqual({
      type: "data",
      channel: "journal",
      data: { n: 20 },
      offset: offset + 21,
      epoch: answer.epoch,
    });
  });

  it("delivers to everyone but the sender, to one connection, and to every connection of one user", async () => {
    const [ada, ada2, bob] = [
      await open("?user=ada"),
      await open("?user=ada"),
      await open("?user=bob"),
    ];
    for (const client of [ada, ada2, bob]) {
      await client.request({ type: "subscribe", channel: "chat" });
    }
    const action = (client: WsClient, channel: string, data?: unknown) =>
      client.request({ type: "action", channel, data });
    // Everyone but the sender: its own answer is the first frame it gets.
    expect(await action(ada, "shout", { message: "all but me" })).toMatchObject({
      type: "action",
      channel: "shout",
      status: "completed",
    });
    for (const client of [ada2, bob]) {
      expect(await client.next()).toEqual({
        type: "data",
        channel: "chat",
        data: { message: "all but me" },
      });
    }
    // One connection, by the id it learned from my_id.
    const bobId = (await action(bob, "my_id")).data as string;
    expect(await action(ada, "whisper", { to: bobId, message: "psst" })).toMatchObject({
      data: 1,
    });
    expect(await bob.next()).toEqual({ type: "data", channel: "chat", data: { message: "psst" } });
    // Every connection of one user (the app's userId is the user in the URL).
    expect(await action(bob, "notify", { user: "ada", message: "both tabs" })).toMatchObject({
      data: 2,
    });
    for (const client of [ada, ada2]) {
      expect(await client.next()).toEqual({
        type: "data",
        channel: "chat",
        data: { message: "both tabs" },
      });
    }
    for (const client of [ada, ada2, bob]) await client.expectNone();
  });

  it("lists who is here on a channel with presence, and tells joins and leaves (one per user)", async () => {
    const watcher = await open("?user=watcher");
    expect(
      await watcher.request({ type: "subscribe", channel: "lobby", presence: true, id: "p" }),
    ).toEqual({
      type: "subscribed",
      channel: "lobby",
      members: [{ user: "watcher", info: { name: "watcher" } }],
      count: 1,
      id: "p",
    });
    const tabs = [await open("?user=zoe"), await open("?user=zoe")];
    for (const tab of tabs) await tab.request({ type: "subscribe", channel: "lobby" });
    expect(await watcher.next()).toEqual({
      type: "join",
      channel: "lobby",
      user: "zoe",
      info: { name: "zoe" },
    });
    expect(
      (await watcher.request({ type: "action", channel: "lobby_count", id: "n" })).data,
    ).toEqual({
      count: { members: 2, connections: 3 },
      members: [
        { user: "watcher", info: { name: "watcher" } },
        { user: "zoe", info: { name: "zoe" } },
      ],
    });
    (tabs[0] as WsClient).ws.close();
    await watcher.expectNone(300);
    (tabs[1] as WsClient).ws.close();
    expect(await watcher.next()).toEqual({ type: "leave", channel: "lobby", user: "zoe" });
  });

  it("answers every malformed frame with the exact code and text, in order", async () => {
    const client = await open();
    const cases: [string, Record<string, unknown>][] = [
      ["{not json", { code: "INVALID_JSON", message: "Invalid JSON." }],
      ["[1,2,3]", { code: "INVALID_MESSAGE", message: "Message must be a JSON object." }],
      ["42", { code: "INVALID_MESSAGE", message: "Message must be a JSON object." }],
      ["null", { code: "INVALID_MESSAGE", message: "Message must be a JSON object." }],
      ['{"channel":"chat"}', { code: "INVALID_MESSAGE", message: "Message type is required." }],
      ['{"type":"","channel":"chat","id":1}', { message: "Message type is required.", id: 1 }],
      ['{"type":null}', { message: "Message type is required." }],
      [
        '{"type":7,"channel":"chat"}',
        { code: "INVALID_MESSAGE", message: "Message type must be a string." },
      ],
      ['{"type":"subscribe"}', { code: "INVALID_MESSAGE", message: "Channel is required." }],
      [
        '{"type":"action","channel":5}',
        { code: "INVALID_MESSAGE", message: "Channel must be a string." },
      ],
      [
        '{"type":"action","channel":"add_numbers","id":{}}',
        { code: "INVALID_MESSAGE", message: "Message id must be a string or a number." },
      ],
      [
        '{"type":"unknown","channel":"chat"}',
        { code: "UNKNOWN_TYPE", message: "Unknown message type: unknown." },
      ],
      // A lone surrogate, sent as a JSON escape: no UTF-8 can carry it, so no name holds one.
      [
        '{"type":"subscribe","channel":"rooms/a\\ud800","id":"s"}',
        { code: "INVALID_MESSAGE", message: NOT_UNICODE, id: "s" },
      ],
      [
        '{"type":"action","channel":"\\udc00add_numbers"}',
        { code: "INVALID_MESSAGE", message: NOT_UNICODE },
      ],
    ];
    for (const [raw] of cases) client.sendRaw(raw);
    for (const [raw, expected] of cases) {
      const frame = await client.next();
      expect(frame, raw).toMatchObject({ type: "error", ...expected });
      expect(frame.channel, raw).toBeUndefined();
    }
    client.sendRaw('{"type":"ping"}');
    expect(await client.next()).toEqual({ type: "pong" });
    expect(client.ws.readyState).toBe(1);
  });

  it("refuses unknown names with NOT_FOUND, the channel and the id", async () => {
    const client = await open();
    expect(await client.request({ type: "action", channel: "nonexistent", id: 7 })).toEqual({
      type: "error",
      code: "NOT_FOUND",
      message: "Action 'nonexistent' not found.",
      channel: "nonexistent",
      id: 7,
    });
    expect(await client.request({ type: "subscribe", channel: "nonexistent", id: "s" })).toEqual({
      type: "error",
      code: "NOT_FOUND",
      message: "Channel 'nonexistent' not found.",
      channel: "nonexistent",
      id: "s",
    });
  });

  it("refuses invalid parameters with INVALID_PARAMS and their issues", async () => {
    const client = await open();
    expect(
      await client.request({
        type: "action",
        channel: "add_numbers",
        data: { a: "five", b: 3 },
        id: 1,
      }),
    ).toEqual({
      type: "error",
      code: "INVALID_PARAMS",
      message: "Invalid parameters for action 'add_numbers'",
      channel: "add_numbers",
      id: 1,
      issues: [{ message: 'Invalid type: Expected number but received "five"', path: ["a"] }],
    });
    expect(await client.request({ type: "subscribe", channel: "rooms/abc" })).toMatchObject({
      code: "INVALID_PARAMS",
      message: "Invalid parameters for channel 'rooms/abc'",
      issues: [{ path: ["room"] }],
    });
  });

  it("answers guards and handler errors: FORBIDDEN, the public error, INTERNAL_ERROR", async () => {
    const client = await open();
    expect(
      await client.request({ type: "action", channel: "guarded", data: { n: -1 } }),
    ).toMatchObject({
      code: "FORBIDDEN",
      message: "Forbidden.",
      channel: "guarded",
    });
    expect(await client.request({ type: "action", channel: "fail_public" })).toMatchObject({
      code: "ROOM_FULL",
      message: "Room is full.",
    });
    const internal = await client.request({ type: "action", channel: "fail_internal", id: 3 });
    expect(internal).toEqual({
      type: "error",
      code: "INTERNAL_ERROR",
      message: "Internal server error.",
      channel: "fail_internal",
      id: 3,
    });
  });

  it("leaves data out only for undefined, and echoes ids on every answer", async () => {
    const client = await open();
    expect(await client.request({ type: "action", channel: "nothing", id: "a" })).toEqual({
      type: "action",
      channel: "nothing",
      status: "completed",
      id: "a",
    });
    expect(
      await client.request({ type: "action", channel: "add_numbers", data: { a: 0, b: 0 } }),
    ).toMatchObject({
      data: 0,
    });
    expect(await client.request({ type: "subscribe", channel: "chat", id: 2 })).toEqual({
      type: "subscribed",
      channel: "chat",
      id: 2,
    });
    expect(await client.request({ type: "unsubscribe", channel: "chat", id: 3 })).toEqual({
      type: "unsubscribed",
      channel: "chat",
      id: 3,
    });
  });

  it("broadcasts to every subscriber once, before the acting client's completion, and not to others", async () => {
    const [a, b, bystander] = await Promise.all([open(), open(), open()]);
    for (const client of [a, b]) await client.request({ type: "subscribe", channel: "chat" });
    a.send({ type: "subscribe", channel: "chat" });
    expect(await a.next()).toEqual({ type: "subscribed", channel: "chat" });
    a.send({ type: "action", channel: "send_message", data: { message: "hello" } });
    expect(await a.next()).toEqual({ type: "data", channel: "chat", data: { message: "hello" } });
    expect(await a.next()).toEqual({
      type: "action",
      channel: "send_message",
      status: "completed",
    });
    expect(await b.next()).toEqual({ type: "data", channel: "chat", data: { message: "hello" } });
    await a.expectNone(150);
    await bystander.expectNone(0);
  });

  it("stops broadcasts after unsubscribe", async () => {
    const [leaving, staying, sender] = await Promise.all([open(), open(), open()]);
    for (const client of [leaving, staying])
      await client.request({ type: "subscribe", channel: "chat" });
    await leaving.request({ type: "unsubscribe", channel: "chat" });
    await sender.request({ type: "action", channel: "send_message", data: { message: "after" } });
    expect((await staying.next()).data).toEqual({ message: "after" });
    await leaving.expectNone(150);
  });

  it("delivers a broadcast for rooms/1 only to rooms/1's subscribers", async () => {
    const [one, two, sender] = await Promise.all([open(), open(), open()]);
    await one.request({ type: "subscribe", channel: "rooms/1" });
    await two.request({ type: "subscribe", channel: "rooms/2" });
    expect(
      (await sender.request({ type: "action", channel: "say", data: { room: "1", text: "hi" } }))
        .data,
    ).toBe(1);
    expect(await one.next()).toEqual({
      type: "data",
      channel: "rooms/1",
      data: { room: "1", text: "hi" },
    });
    await two.expectNone(150);
  });

  it("takes subscribe-time parameters, sends initial data, and refuses a bad token", async () => {
    const client = await open();
    expect(
      await client.request({
        type: "subscribe",
        channel: "private",
        data: { token: "guess" },
        id: 1,
      }),
    ).toEqual({
      type: "error",
      code: "FORBIDDEN",
      message: "Invalid token.",
      channel: "private",
      id: 1,
    });
    client.send({ type: "subscribe", channel: "private", data: { token: "secret" } });
    expect(await client.next()).toEqual({ type: "subscribed", channel: "private" });
    expect(await client.next()).toEqual({
      type: "data",
      channel: "private",
      data: { welcome: true },
    });
  });

  it("answers frames of one connection in arrival order", async () => {
    const client = await open();
    client.send({ type: "action", channel: "slow", id: 1 });
    client.send({ type: "action", channel: "add_numbers", data: { a: 1, b: 2 }, id: 2 });
    expect((await client.next()).id).toBe(1);
    expect((await client.next()).id).toBe(2);
  });

  it("refuses the upgrade with onConnect's status, before any socket", async () => {
    for (const status of [401, 403]) {
      const refused = new WsClient(`ws://127.0.0.1:${server.port}/?refuse=${status}`);
      await expect(refused.opened).rejects.toMatchObject({ status });
    }
  });

  it("gives handlers the connection state and the upgrade request", async () => {
    const client = await open("?user=ada", { "x-probe": "42" });
    // What the client offered (with a codec: the codec's and `socketapi`).
    const offered = codec === undefined ? undefined : [codec.protocol, "socketapi"];
    const seen = (await client.request({ type: "action", channel: "whoami" })).data as {
      protocol: string | null;
    };
    expect(seen).toMatchObject({ user: "ada", path: "/", probe: "42" });
    // Workers keep only the headers the app names (keepHeaders): none of this one.
    if (seen.protocol !== null) expect(seen.protocol.split(/,\s*/)).toEqual(offered);
  });

  // The suite's tokens are `user:NAME:TTL` (conformance-app.ts), offered as the typed
  // client offers them: `socketapi`, and the token in base64url.
  const bearer = (token: string) => `socketapi.bearer.${Buffer.from(token).toString("base64url")}`;
  const openWithToken = async (token: string) => {
    const client = await openClient(
      `ws://127.0.0.1:${server.port}/`,
      {},
      ["socketapi", bearer(token)],
      { codec },
    );
    clients.push(client);
    return client;
  };
  /** The answer to an upgrade offering `protocols`, sent as written (no client checks them). */
  const refusal = (protocols: string[], path = "") =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const request = httpRequest({
        host: "127.0.0.1",
        port: server.port,
        path: `/${path}`,
        headers: {
          upgrade: "websocket",
          connection: "Upgrade",
          "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          "sec-websocket-version": "13",
          "sec-websocket-protocol": protocols.join(", "),
        },
      });
      request.on("upgrade", (_res, socket) => {
        socket.destroy();
        resolve({ status: 101, text: "" });
      });
      request.on("response", (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => {
          text += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      });
      request.on("error", reject);
      request.end();
    });

  it("takes a token in Sec-WebSocket-Protocol, answers socketapi alone, keeps no token, says the expiry", async () => {
    const client = await openWithToken("user:grace:60000");
    // With a codec offered first, the server chooses the codec's subprotocol.
    expect(client.ws.protocol).toBe(codec?.protocol ?? "socketapi");
    const expiry = await client.next();
    expect(expiry.type).toBe("expiry");
    expect(expiry.expiresIn).toBeGreaterThan(50_000);
    expect(expiry.expiresIn).toBeLessThanOrEqual(60_000);
    const seen = (await client.request({ type: "action", channel: "whoami" })).data as {
      user: string;
      protocol: string | null;
    };
    expect(seen.user).toBe("grace");
    // Workers keep only the headers the app names (keepHeaders): none of this one.
    expect(seen.protocol === (codec?.protocol ?? "socketapi") || seen.protocol === null).toBe(true);
    // A client that offers nothing gets no subprotocol and no expiry frame, as before (one
    // that offers a codec gets it).
    const plain = await open();
    expect(plain.ws.protocol).toBe(codec?.protocol ?? "");
    plain.send({ type: "ping" });
    expect(await plain.next()).toEqual({ type: "pong" });
    // Within the suite's connection limit for the tests that follow.
    for (const each of [client, plain]) {
      each.ws.close();
      await each.closed;
    }
  });

  it("refuses a token it cannot take: without socketapi, two, malformed, also in the URL, too long", async () => {
    const token = bearer("user:ada:60000");
    expect(await refusal([token])).toEqual({
      status: 400,
      text: "A token in Sec-WebSocket-Protocol needs the 'socketapi' protocol beside it.",
    });
    expect(await refusal(["socketapi", token, bearer("user:grace:60000")])).toEqual({
      status: 400,
      text: "Offer one token, not two.",
    });
    expect(await refusal(["socketapi", "socketapi.bearer.!!"])).toEqual({
      status: 400,
      text: "Malformed token in Sec-WebSocket-Protocol.",
    });
    expect(await refusal(["socketapi", token], "?token=user:ada:60000")).toEqual({
      status: 400,
      text: "Offer the token once: in Sec-WebSocket-Protocol, not also in the URL or Authorization.",
    });
    // 10 KB: over the 8,192 bytes a token may have (a runtime whose header limit is lower
    // refuses it first, also with 431).
    const long = await refusal(["socketapi", bearer("x".repeat(10 * 1024))]);
    expect(long.status).toBe(431);
    // A token onConnect refuses: its answer.
    expect((await refusal(["socketapi", bearer("nonsense")])).status).toBe(401);
  });

  it("closes a connection at its token's expiry with 4001; a refresh moves it, a refused one does not", async () => {
    const refreshed = await openWithToken("user:lin:700");
    const refused = await openWithToken("user:lin:700");
    const started = Date.now();
    expect((await refreshed.next()).type).toBe("expiry");
    expect((await refused.next()).type).toBe("expiry");
    refreshed.send({ type: "refresh", token: "user:lin:2000", id: 1 });
    const answer = await refreshed.next();
    expect(answer).toMatchObject({ type: "refreshed", id: 1 });
    expect(answer.expiresIn).toBeGreaterThan(1500);
    refused.send({ type: "refresh", token: "bad", id: 2 });
    expect(await refused.next()).toEqual({
      type: "error",
      code: "UNAUTHORIZED",
      message: "Token refused.",
      id: 2,
    });
    // A refresh may not change who the user is.
    refreshed.send({ type: "refresh", token: "user:someone-else:2000", id: 3 });
    expect(await refreshed.next()).toEqual({
      type: "error",
      code: "FORBIDDEN",
      message: "A refresh cannot change the user.",
      id: 3,
    });
    expect(await refused.closed).toEqual({ code: 4001, reason: "Token expired" });
    expect(Date.now() - started).toBeLessThan(1500);
    // Still open past the first expiry, then closed at the refreshed one.
    expect(refreshed.ws.readyState).toBe(WebSocket.OPEN);
    expect(await refreshed.closed).toEqual({ code: 4001, reason: "Token expired" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
  }, 10_000);

  it("ends every session of a user with disconnectUser, and says how many", async () => {
    const victims = [await open("?user=victim"), await open("?user=victim")];
    const bystander = await open("?user=bystander");
    const answer = await bystander.request({
      type: "action",
      channel: "disconnect_user",
      data: { user: "victim" },
    });
    expect(answer.data).toBe(2);
    for (const victim of victims) {
      expect(await victim.closed).toEqual({ code: 4003, reason: "Banned" });
    }
    expect(bystander.ws.readyState).toBe(WebSocket.OPEN);
    bystander.ws.close();
    await bystander.closed;
  });

  it("cleans up a client that disconnects", async () => {
    const observer = await open();
    const stats = async () => (await observer.request({ type: "action", channel: "stats" })).data;
    const before = await stats();
    const leaving = await open();
    await leaving.request({ type: "subscribe", channel: "chat" });
    expect(await stats()).toEqual({
      ...before,
      connections: before.connections + 1,
      chat: before.chat + 1,
    });
    await leaving.close();
    const deadline = Date.now() + 3000;
    let now = await stats();
    while (now.connections !== before.connections && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      now = await stats();
    }
    expect(now).toEqual(before);
  });

  it("serves the AsyncAPI document and the docs page, with the server that answered", async () => {
    const response = await http("/asyncapi.json");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("application/json");
    const document = (await response.json()) as {
      asyncapi: string;
      servers: Record<string, { host: string; protocol: string }>;
      channels: Record<string, { address: string }>;
      operations: Record<string, { action: string }>;
    };
    expect(document.asyncapi).toBe("3.0.0");
    expect(Object.values(document.servers)).toEqual([
      expect.objectContaining({ host: `127.0.0.1:${server.port}`, protocol: "ws" }),
    ]);
    expect(document.channels.add_numbers?.address).toBe("add_numbers");
    expect(document.channels.rooms_room?.address).toBe("rooms/{room}");
    expect(document.operations["chat.subscribe"]?.action).toBe("receive");
    const page = await http("/docs");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const html = await page.text();
    expect(html).toContain('"asyncapi":"/asyncapi.json"');
    expect(html).toContain("pageScript(JSON.parse(");
  });

  it("broadcasts from another process through POST /_broadcast", async () => {
    const client = await open();
    await client.request({ type: "subscribe", channel: "rooms/9" });
    const json = { "content-type": "application/json" };
    const response = await http("/_broadcast", {
      method: "POST",
      headers: json,
      body: JSON.stringify({ channel: "rooms/9", data: { text: "from cron" } }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, delivered: 1 });
    expect(await client.next()).toEqual({
      type: "data",
      channel: "rooms/9",
      data: { room: "9", text: "from cron" },
    });
    const post = (body: string, headers: Record<string, string>) =>
      http("/_broadcast", { method: "POST", headers, body });
    expect((await post('{"channel":"nope"}', json)).status).toBe(404);
    // A web page in a browser on the same host (or reached by DNS rebinding) cannot.
    const fromPage = await post('{"channel":"rooms/9"}', {
      ...json,
      origin: "http://evil.example",
    });
    expect(fromPage.status).toBe(403);
    // A cross-site form can only send text/plain (and a browser adds Origin, as above).
    expect((await post('{"channel":"rooms/9"}', { "content-type": "text/plain" })).status).toBe(
      415,
    );
    // Behind a proxy on the same host everyone is loopback: proxied callers need the token.
    const proxied = await post('{"channel":"rooms/9"}', {
      ...json,
      "x-forwarded-for": "203.0.113.9",
    });
    expect(proxied.status).toBe(403);
    await client.expectNone(50);
  });

  it("answers RATE_LIMITED over the rate limit, naming the limit", async () => {
    const client = await open();
    // Frames answered at once (no channel), so that none waits in the queue. The bucket
    // holds 300 and refills at 300 a second while they arrive: where they reach the app
    // slowly (a busy machine, wrangler's proxy in front of workerd), another round of 400
    // comes before the refill.
    let limited: Frame | undefined;
    for (let round = 0; round < 5 && !limited; round++) {
      for (let i = 0; i < 400; i++) client.sendRaw('{"type":"action"}');
      const frames: Frame[] = [];
      for (let i = 0; i < 400; i++) frames.push(await client.next());
      limited = frames.find((f) => f.code === "RATE_LIMITED");
    }
    expect(limited).toEqual({
      type: "error",
      code: "RATE_LIMITED",
      message: "Rate limit exceeded: at most 300 messages per second.",
    });
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });

  it("closes a connection that keeps flooding with 1008 (1006 where the runtime drops it)", async () => {
    const client = await open();
    // Not pings: on Workers the runtime answers those itself, without the app.
    for (let i = 0; i < 1000; i++) client.sendRaw('{"type":"action","channel":"nothing"}');
    const { code } = await client.closed;
    expect(code).toBe(capabilities.cleanCloseUnderFlood ? 1008 : 1006);
  });

  it("answers TOO_MANY_SUBSCRIPTIONS past the connection's limit", async () => {
    const client = await open();
    for (let room = 0; room < 10; room++) {
      expect((await client.request({ type: "subscribe", channel: `rooms/${room}` })).type).toBe(
        "subscribed",
      );
    }
    expect(await client.request({ type: "subscribe", channel: "rooms/10", id: 1 })).toEqual({
      type: "error",
      code: "TOO_MANY_SUBSCRIPTIONS",
      message: "Too many subscriptions: at most 10 per connection.",
      channel: "rooms/10",
      id: 1,
    });
  });

  it("refuses a browser from a foreign origin with 403", async () => {
    const foreign = new WsClient(`ws://127.0.0.1:${server.port}/`, {
      origin: "http://evil.example",
    });
    await expect(foreign.opened).rejects.toMatchObject({ status: 403 });
    const allowed = await open("", { origin: "http://allowed.example" });
    expect(
      (await allowed.request({ type: "action", channel: "add_numbers", data: { a: 1, b: 1 } }))
        .data,
    ).toBe(2);
  });

  it.runIf(capabilities.connectionLimit)(
    "refuses upgrades past the connection limit with 503 (skipped where the Worker cannot count the objects' connections)",
    async () => {
      const observer = await open();
      const { connections } = (await observer.request({ type: "action", channel: "stats" })).data;
      const extra = await Promise.all(Array.from({ length: 40 - connections }, () => open()));
      const refused = new WsClient(`ws://127.0.0.1:${server.port}/`);
      await expect(refused.opened).rejects.toMatchObject({ status: 503 });
      for (const client of extra) client.ws.terminate();
      // The next test opens connections: wait until the server has seen these go.
      const deadline = Date.now() + 5000;
      const count = async () =>
        (await observer.request({ type: "action", channel: "stats" })).data.connections;
      while ((await count()) > connections && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(await count()).toBeLessThanOrEqual(connections);
    },
  );

  it("changes nothing with __proto__ and constructor keys in a frame", async () => {
    const client = await open();
    client.sendRaw(
      '{"type":"action","channel":"add_numbers","data":{"a":1,"b":2,"__proto__":{"a":"x"},"constructor":{"prototype":{"b":"y"}}},"__proto__":{"type":"subscribe"}}',
    );
    expect(await client.next()).toEqual({
      type: "action",
      channel: "add_numbers",
      status: "completed",
      data: 3,
    });
    expect(
      (await client.request({ type: "action", channel: "add_numbers", data: { a: 2, b: 2 } })).data,
    ).toBe(4);
  });

  it.runIf(capabilities.slowConsumers)(
    "cuts off a subscriber that does not read, while another keeps receiving (skipped where the send buffer is hidden)",
    async () => {
      const [slow, fast, observer] = await Promise.all([open(), open(), open()]);
      await slow.request({ type: "subscribe", channel: "firehose" });
      await fast.request({ type: "subscribe", channel: "firehose" });
      // The slow client stops reading: the server's send buffer for it grows.
      (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const stats = async () => (await observer.request({ type: "action", channel: "stats" })).data;
      const before = (await stats()).firehose;
      let rounds = 0;
      // Each round sends 160 KiB, under the 256 KiB limit: a reader keeps up, the slow
      // one falls further behind every round.
      while ((await stats()).firehose === before && rounds++ < 40) {
        await observer.request({
          type: "action",
          channel: "flood",
          data: { count: 10, size: 16 * 1024 },
        });
      }
      expect((await stats()).firehose).toBe(before - 1);
      const firehose = () =>
        fast.frames.filter((frame) => frame.startsWith('{"type":"data","channel":"firehose"'));
      const deadline = Date.now() + 5000;
      while (firehose().length < rounds * 10 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(firehose().length).toBe(rounds * 10);
    },
  );

  it.runIf(capabilities.deadPeers)(
    "closes a connection that answers no pings (skipped where the platform watches connections itself)",
    { timeout: 30_000 },
    async () => {
      const observer = await open();
      const silent = new WebSocket(`ws://127.0.0.1:${server.port}/`, { autoPong: false });
      await once(silent, "open");
      const [code] = await once(silent, "close");
      expect([1006, 1001, 1011]).toContain(code);
      expect((await observer.request({ type: "action", channel: "stats" })).type).toBe("action");
    },
  );

  it.runIf(hono)(
    "keeps the Hono app's other routes and middleware working (skipped: no Hono app here)",
    async () => {
      const health = await http("/health", { headers: { origin: "https://example.com" } });
      expect(await health.json()).toEqual({ ok: true });
      expect(health.headers.get("x-served-by")).toBe("hono");
      expect(health.headers.get("access-control-allow-origin")).toBe("*");
      const client = await open("room");
      expect((await client.request({ type: "action", channel: "whoami" })).data).toMatchObject({
        path: "/room",
      });
    },
  );

  it.runIf(!hono)(
    "answers a plain HTTP request with 426 Upgrade Required (skipped in Hono: it goes to the next route)",
    async () => {
      expect((await http("/")).status).toBe(426);
    },
  );

  it.skipIf(!capabilities.gracefulShutdown)(
    "shuts down gracefully: sockets close with 1001, the process exits 0 (skipped where the platform ends sockets itself)",
    async () => {
      const [a, b] = await Promise.all([open(), open()]);
      const closed = Promise.all([a.closed, b.closed]);
      expect(await server.stop()).toBe(0);
      for (const close of await closed) expect(close.code).toBe(1001);
    },
  );
});

// The one request table, with a `path`: every runtime that owns its server answers the same.
const wsPath = "/ws";
const pathRuntimes = runtimes
  .filter(({ hono }) => !hono)
  .map(({ name, command }) => ({
    name,
    // wrangler dev takes the path as a Worker variable; the others from the environment.
    command: name.startsWith("Workers")
      ? [...command, "--var", `SOCKETAPI_PATH:${wsPath}`]
      : command,
  }));

describe.each(pathRuntimes)("$name serving only /ws", ({ command }) => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer(command, { env: { SOCKETAPI_PATH: wsPath } });
  }, 30_000);
  afterAll(async () => {
    await server?.stop();
  });
  const http = (path: string, init?: RequestInit) =>
    fetch(`http://127.0.0.1:${server.port}${path}`, init);

  it("serves /ws, and answers by the table: 404 off the path (plain or upgrade), 426 to a plain request on it, the broadcast endpoint as ever", async () => {
    const client = await openClient(`ws://127.0.0.1:${server.port}${wsPath}`);
    expect(
      (await client.request({ type: "action", channel: "add_numbers", data: { a: 1, b: 2 } })).data,
    ).toBe(3);
    await client.request({ type: "subscribe", channel: "chat" });
    await expect(openClient(`ws://127.0.0.1:${server.port}/other`)).rejects.toMatchObject({
      status: 404,
    });
    expect((await http("/other")).status).toBe(404);
    expect((await http(wsPath)).status).toBe(426);
    const broadcast = await http("/_broadcast", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ channel: "chat", data: { message: "through the table" } }),
    });
    expect(broadcast.status).toBe(200);
    expect(await client.next()).toEqual({
      type: "data",
      channel: "chat",
      data: { message: "through the table" },
    });
    client.ws.terminate();
  });
});
