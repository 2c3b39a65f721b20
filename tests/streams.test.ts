// Streaming actions and cancellation over a real socket (Node): chunks in order, then the
// answer; backpressure; cancel before the first chunk, mid-stream and after the end; a
// disconnect mid-stream; other frames going on beside a stream; maxStreams; timeouts;
// the typed client's stream() and signal.
import * as v from "valibot";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type NodeServer, serve } from "../adapters/node.ts";
import { createClient, SocketAPIClientError } from "../src/client/index.ts";
import { RequestCancelledError, SocketAPI, type SocketAPIOptions } from "../src/index.ts";
import { openClient, type WsClient } from "./helpers/ws-client.ts";

const servers: NodeServer[] = [];
const sockets: WsClient[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.ws.terminate();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(5);
  }
}

/** What the generators of the app did, for the tests to look at. */
function probe() {
  return {
    pulled: 0,
    pulledBytes: 0,
    open: 0,
    finallyRan: 0,
    reasons: [] as unknown[],
  };
}

function streamingApp(seen: ReturnType<typeof probe>, options: SocketAPIOptions<object> = {}) {
  return new SocketAPI(options)
    .action(
      "count",
      { input: v.object({ to: v.number(), delay: v.optional(v.number(), 0) }) },
      async function* ({ to, delay }, ctx) {
        seen.open++;
        try {
          for (let i = 1; i <= to; i++) {
            if (delay > 0) await sleep(delay);
            seen.pulled++;
            yield i;
          }
          return `counted to ${to}`;
        } finally {
          seen.open--;
          seen.finallyRan++;
          seen.reasons.push(ctx.signal.aborted ? ctx.signal.reason : "not aborted");
        }
      },
    )
    .action("typed", { output: v.pipe(v.number(), v.maxValue(2)) }, async function* () {
      yield 1;
      yield 2;
      yield 3;
      return 0;
    })
    .action("flood", async function* () {
      // Never waits: a stream without backpressure would fill the memory.
      const chunk = "x".repeat(64 * 1024);
      seen.open++;
      try {
        for (;;) {
          seen.pulled++;
          seen.pulledBytes += chunk.length;
          yield chunk;
        }
      } finally {
        seen.open--;
        seen.finallyRan++;
      }
    })
    .action("slow", async (_, ctx) => {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(resolve, 5000);
        ctx.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          seen.reasons.push(ctx.signal.reason);
          reject(ctx.signal.reason);
        });
      });
      return "late";
    })
    .action("echo", { input: v.object({ text: v.string() }) }, ({ text }) => text)
    .action("shapes", async function* () {
      yield undefined;
      yield (() => 1) as unknown as string; // JSON has no function: sent as no data
      yield 'say "hi"';
      yield { nested: [1, null] };
    });
}

async function start(seen: ReturnType<typeof probe>, options: SocketAPIOptions<object> = {}) {
  const app = streamingApp(seen, options);
  const server = await serve(app, { port: 0, host: "127.0.0.1" });
  servers.push(server);
  return Object.assign(server, { app });
}

async function connect(server: NodeServer): Promise<WsClient> {
  const socket = await openClient(server.url);
  sockets.push(socket);
  return socket;
}

describe("a streaming action", () => {
  it("sends each yielded value as a chunk with the request's id, in order, then completed", async () => {
    const seen = probe();
    const socket = await connect(await start(seen));
    socket.send({ type: "action", channel: "count", data: { to: 3 }, id: 7 });
    expect(await socket.next()).toEqual({ type: "chunk", channel: "count", data: 1, id: 7 });
    expect(await socket.next()).toEqual({ type: "chunk", channel: "count", data: 2, id: 7 });
    expect(await socket.next()).toEqual({ type: "chunk", channel: "count", data: 3, id: 7 });
    expect(await socket.next()).toEqual({
      type: "action",
      channel: "count",
      status: "completed",
      data: "counted to 3",
      id: 7,
    });
    await until(() => seen.finallyRan === 1);
    expect(seen.reasons).toEqual(["not aborted"]);
  });

  it("writes a chunk without data for a value JSON cannot hold, and any id as it came", async () => {
    const socket = await connect(await start(probe()));
    socket.send({ type: "action", channel: "shapes", id: 'a"b' });
    expect(await socket.next()).toEqual({ type: "chunk", channel: "shapes", id: 'a"b' });
    expect(await socket.next()).toEqual({ type: "chunk", channel: "shapes", id: 'a"b' });
    expect(await socket.next()).toEqual({
      type: "chunk",
      channel: "shapes",
      data: 'say "hi"',
      id: 'a"b',
    });
    expect(await socket.next()).toEqual({
      type: "chunk",
      channel: "shapes",
      data: { nested: [1, null] },
      id: 'a"b',
    });
    expect(await socket.next()).toEqual({
      type: "action",
      channel: "shapes",
      status: "completed",
      id: 'a"b',
    });
    // Without an id, the chunks carry none.
    socket.send({ type: "action", channel: "shapes" });
    expect(await socket.next()).toEqual({ type: "chunk", channel: "shapes" });
  });

  it("applies the output schema to every chunk and ends the stream at the first that fails", async () => {
    const socket = await connect(await start(probe()));
    socket.send({ type: "action", channel: "typed", id: 1 });
    expect(await socket.next()).toMatchObject({ type: "chunk", data: 1 });
    expect(await socket.next()).toMatchObject({ type: "chunk", data: 2 });
    expect(await socket.next()).toMatchObject({ type: "error", code: "INTERNAL_ERROR", id: 1 });
  });

  it("pulls a generator that never waits only while the client reads: memory stays bounded", async () => {
    const seen = probe();
    const socket = await connect(await start(seen));
    // The client stops reading from its socket: the kernel's buffers fill, then the server's.
    socket.ws.pause();
    socket.send({ type: "action", channel: "flood", id: 1 });
    await sleep(500);
    const after500 = seen.pulledBytes;
    await sleep(1000);
    const after1500 = seen.pulledBytes;
    // It stopped: nothing more pulled in a second, and what was pulled is what the socket
    // buffers hold (the kernel's, on loopback a few MiB, and the high-water mark), not
    // what a generator yields in 1.5 s unchecked (GBs).
    expect(after1500).toBe(after500);
    expect(after1500).toBeLessThan(32 * 1024 * 1024);
    expect(after1500).toBeGreaterThan(0);
    socket.ws.resume();
    // Reading again, it goes on.
    await until(() => seen.pulledBytes > after1500 + 10 * 64 * 1024);
    socket.ws.terminate();
    await until(() => seen.finallyRan === 1);
  });

  it("does not hold up the connection's other frames (the default concurrency of 1)", async () => {
    const socket = await connect(await start(probe()));
    socket.send({ type: "action", channel: "count", data: { to: 50, delay: 20 }, id: "s" });
    expect(await socket.next()).toMatchObject({ type: "chunk", id: "s", data: 1 });
    socket.send({ type: "action", channel: "echo", data: { text: "hi" }, id: "e" });
    const echo = await socket.take((frame) => frame.id === "e");
    expect(echo).toEqual({
      type: "action",
      channel: "echo",
      status: "completed",
      data: "hi",
      id: "e",
    });
    // The stream was still going when the echo was answered.
    const rest = await socket.take((frame) => frame.id === "s" && frame.type === "action", 5000);
    expect(rest.data).toBe("counted to 50");
  });

  it("refuses one more stream than maxStreams, and takes one again once a stream ended", async () => {
    const seen = probe();
    const socket = await connect(await start(seen, { maxStreams: 2 }));
    socket.send({ type: "action", channel: "count", data: { to: 100, delay: 50 }, id: 1 });
    socket.send({ type: "action", channel: "count", data: { to: 100, delay: 50 }, id: 2 });
    await until(() => seen.open === 2);
    socket.send({ type: "action", channel: "count", data: { to: 1 }, id: 3 });
    expect(await socket.take((frame) => frame.id === 3)).toEqual({
      type: "error",
      code: "TOO_MANY_STREAMS",
      message: "Too many streams: at most 2 at once per connection.",
      channel: "count",
      id: 3,
    });
    socket.send({ type: "cancel", channel: "count", id: 1 });
    await until(() => seen.open === 1);
    socket.send({ type: "action", channel: "count", data: { to: 1 }, id: 4 });
    expect(await socket.take((frame) => frame.id === 4 && frame.type === "action")).toMatchObject({
      status: "completed",
    });
  });

  it("times out between chunks after handlerTimeout, and in all after streamTimeout", async () => {
    const seen = probe();
    const socket = await connect(await start(seen, { handlerTimeout: 200, streamTimeout: 600 }));
    socket.send({ type: "action", channel: "count", data: { to: 2, delay: 400 }, id: "idle" });
    expect(await socket.take((frame) => frame.id === "idle")).toEqual({
      type: "error",
      code: "HANDLER_TIMEOUT",
      message: "Stream sent no chunk within 200 ms.",
      channel: "count",
      id: "idle",
    });
    socket.send({ type: "action", channel: "count", data: { to: 100, delay: 100 }, id: "total" });
    const ended = await socket.take((frame) => frame.id === "total" && frame.type === "error");
    expect(ended).toEqual({
      type: "error",
      code: "HANDLER_TIMEOUT",
      message: "Stream did not finish within 600 ms.",
      channel: "count",
      id: "total",
    });
    await until(() => seen.finallyRan === 2);
  });
});

describe("cancelling a request", () => {
  it("stops a stream mid-way: CANCELLED, the generator's finally runs, its signal says why", async () => {
    const seen = probe();
    const socket = await connect(await start(seen));
    socket.send({ type: "action", channel: "count", data: { to: 1000, delay: 10 }, id: 5 });
    expect(await socket.next()).toMatchObject({ type: "chunk", data: 1 });
    socket.send({ type: "cancel", channel: "count", id: 5 });
    const end = await socket.take((frame) => frame.type !== "chunk");
    expect(end).toEqual({
      type: "error",
      code: "CANCELLED",
      message: "Cancelled by the client.",
      channel: "count",
      id: 5,
    });
    await until(() => seen.finallyRan === 1);
    expect(seen.reasons[0]).toBeInstanceOf(RequestCancelledError);
    // Nothing follows the end: no chunk, no second answer.
    const count = socket.frames.length;
    await sleep(100);
    expect(socket.frames.slice(count).filter((f) => f.includes('"id":5'))).toEqual([]);
  });

  it("stops a stream before its first chunk, and an action that does not stream", async () => {
    const seen = probe();
    const socket = await connect(await start(seen));
    // Cancelled in the same read as the call: whatever the generator began, it ends.
    socket.send({ type: "action", channel: "count", data: { to: 3, delay: 300 }, id: "a0" });
    socket.send({ type: "cancel", channel: "count", id: "a0" });
    expect(await socket.next()).toMatchObject({ type: "error", code: "CANCELLED", id: "a0" });
    await until(() => seen.open === 0);
    const ran = seen.finallyRan;
    const pulled = seen.pulled;
    // Cancelled while it waits for its first chunk: its finally runs once that wait is over.
    socket.send({ type: "action", channel: "count", data: { to: 3, delay: 300 }, id: "a" });
    await until(() => seen.open === 1);
    socket.send({ type: "cancel", channel: "count", id: "a" });
    expect(await socket.next()).toMatchObject({ type: "error", code: "CANCELLED", id: "a" });
    await until(() => seen.finallyRan === ran + 1);
    expect(seen.pulled - pulled).toBe(1);
    expect(seen.reasons.at(-1)).toBeInstanceOf(RequestCancelledError);
    const reasons = seen.reasons.length;
    socket.send({ type: "action", channel: "slow", id: "b" });
    await sleep(50);
    socket.send({ type: "cancel", channel: "slow", id: "b" });
    expect(await socket.next()).toEqual({
      type: "error",
      code: "CANCELLED",
      message: "Cancelled by the client.",
      channel: "slow",
      id: "b",
    });
    await until(() => seen.reasons.length === reasons + 1);
    expect(seen.reasons.at(-1)).toBeInstanceOf(RequestCancelledError);
    // The connection goes on.
    expect(await socket.request({ type: "action", channel: "echo", data: { text: "x" } })).toEqual({
      type: "action",
      channel: "echo",
      status: "completed",
      data: "x",
    });
  });

  it("answers nothing to a cancel of a finished or unknown request, and refuses one without an id", async () => {
    const socket = await connect(await start(probe()));
    expect(
      await socket.request({ type: "action", channel: "echo", data: { text: "y" }, id: 1 }),
    ).toMatchObject({ status: "completed", id: 1 });
    socket.send({ type: "cancel", channel: "echo", id: 1 });
    socket.send({ type: "cancel", channel: "nothing", id: "zz" });
    await socket.expectNone(150);
    expect(await socket.request({ type: "cancel", channel: "echo" })).toEqual({
      type: "error",
      code: "INVALID_MESSAGE",
      message: "Cancel needs the id of the request it cancels.",
      channel: "echo",
    });
  });

  it("cancels a request still waiting its turn behind a slow one", async () => {
    const socket = await connect(await start(probe()));
    socket.send({ type: "action", channel: "slow", id: "first" });
    socket.send({ type: "action", channel: "echo", data: { text: "queued" }, id: "second" });
    socket.send({ type: "cancel", channel: "echo", id: "second" });
    expect(await socket.next()).toMatchObject({ type: "error", code: "CANCELLED", id: "second" });
    socket.send({ type: "cancel", channel: "slow", id: "first" });
    expect(await socket.next()).toMatchObject({ type: "error", code: "CANCELLED", id: "first" });
  });

  it("stops every stream of a connection that closes: each generator releases what it holds", async () => {
    const seen = probe();
    const socket = await connect(await start(seen));
    for (const id of [1, 2, 3]) {
      socket.send({ type: "action", channel: "count", data: { to: 1000, delay: 10 }, id });
    }
    await until(() => seen.open === 3);
    socket.ws.terminate();
    await until(() => seen.open === 0 && seen.finallyRan === 3);
    for (const reason of seen.reasons) {
      expect(reason).toMatchObject({ name: "AbortError" });
      expect(reason).not.toBeInstanceOf(RequestCancelledError);
    }
  });
});

describe("the typed client", () => {
  it("reads a stream with for await, and breaking out of it cancels on the server", async () => {
    const seen = probe();
    const server = await start(seen);
    const client = createClient<ReturnType<typeof streamingApp>>(server.url, { WebSocket });
    try {
      const all: number[] = [];
      const counted = client.stream("count", { to: 4 });
      for await (const n of counted) all.push(n);
      expect(all).toEqual([1, 2, 3, 4]);
      expect(await counted.result).toBe("counted to 4");

      const long = client.stream("count", { to: 1000, delay: 10 });
      const some: number[] = [];
      for await (const n of long) {
        some.push(n);
        if (n === 3) break;
      }
      expect(some).toEqual([1, 2, 3]);
      await until(() => seen.finallyRan === 2);
      expect(seen.reasons[1]).toBeInstanceOf(RequestCancelledError);
      await expect(long.result).rejects.toMatchObject({ code: "CANCELLED" });
      // The connection is fine.
      expect(await client.action("echo", { text: "after" })).toBe("after");
    } finally {
      client.close();
    }
  });

  it("cancels an action with a signal, before and while it runs", async () => {
    const seen = probe();
    const server = await start(seen);
    const client = createClient<ReturnType<typeof streamingApp>>(server.url, { WebSocket });
    try {
      await client.opened();
      const controller = new AbortController();
      const slow = client.action("slow", undefined, { signal: controller.signal });
      await sleep(50);
      controller.abort("changed my mind");
      const error = await slow.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SocketAPIClientError);
      expect(error).toMatchObject({ code: "CANCELLED", cause: "changed my mind" });
      await until(() => seen.reasons.length === 1);
      expect(seen.reasons[0]).toBeInstanceOf(RequestCancelledError);
      // Already aborted: not even sent.
      await expect(
        client.action("echo", { text: "no" }, { signal: AbortSignal.abort() }),
      ).rejects.toMatchObject({ code: "CANCELLED" });
      // The server's late CANCELLED answer is for nobody: the next request gets its own.
      expect(await client.action("echo", { text: "yes" })).toBe("yes");
    } finally {
      client.close();
    }
  });

  it("fails a stream the connection dropped under with DISCONNECTED, never resumed", async () => {
    const seen = probe();
    const server = await start(seen);
    const client = createClient<ReturnType<typeof streamingApp>>(server.url, {
      WebSocket,
      reconnect: { initialDelay: 10, maxDelay: 20 },
    });
    try {
      const stream = client.stream("count", { to: 1000, delay: 10 });
      const got: number[] = [];
      const read = (async () => {
        for await (const n of stream) {
          got.push(n);
          if (n === 2) {
            // The server drops every connection.
            for (const connection of server.app.connections) connection.close(1012, "restart");
          }
        }
      })();
      await expect(read).rejects.toMatchObject({ code: "DISCONNECTED" });
      expect(got.slice(0, 2)).toEqual([1, 2]);
      await until(() => client.status === "open");
      expect(await client.action("echo", { text: "back" })).toBe("back");
      expect(seen.finallyRan).toBe(1);
    } finally {
      client.close();
    }
  });
});
