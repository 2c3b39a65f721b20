// A broker that stops answering while its connections stay open (redis-server under
// SIGSTOP): everything that waits for it counts against the relay's maxPendingBytes and
// waits at most commandTimeout, for broadcasts with history, recoveries and presence as for
// plain broadcasts. A real redis-server, paused and resumed.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import * as v from "valibot";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type NodeServer, serve } from "../adapters/node.ts";
import { redisRelay } from "../relays/redis.ts";
import { hubOf } from "../src/adapter.ts";
import { MAX_WAITING_BYTES } from "../src/hub/unstamped-order.ts";
import { SocketAPI } from "../src/index.ts";
import { type Broker, startRedis } from "./helpers/brokers.ts";
import { openClient, type WsClient } from "./helpers/ws-client.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** The heap and what lives outside it (buffers), after a full collection. */
function memory(): number {
  gc();
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}

const MiB = 1024 * 1024;

function stalledApp(url: string) {
  const errors: string[] = [];
  const app = new SocketAPI({
    relay: redisRelay({
      url,
      prefix: `stall${Date.now()}${Math.random().toString(36).slice(2)}:`,
      maxPendingBytes: 2 * MiB,
      commandTimeout: 300,
      joinTimeout: 300,
    }),
    onError: (error) => errors.push(error instanceof Error ? error.message : String(error)),
  })
    .channel(
      "feed",
      {
        params: v.object({ pad: v.optional(v.string(), "") }),
        history: { size: 1000, ttl: 60_000 },
      },
      ({ pad }) => ({ pad }),
    )
    .channel("lobby", { presence: (ctx) => ctx.connection.id }, () => null);
  return { app, errors };
}

describe("a Redis that stops answering, its connections open", () => {
  let redis: Broker;
  const servers: NodeServer[] = [];
  const sockets: WsClient[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    redis.resume();
    for (const socket of sockets.splice(0)) socket.ws.terminate();
    await Promise.all(servers.splice(0).map((server) => server.close()));
  });
  afterAll(async () => {
    await redis?.kill();
  });

  it("holds at most maxPendingBytes of broadcasts with history, loses the rest, and says so once", async () => {
    const { app, errors } = stalledApp(redis.url);
    const server = await serve(app, { port: 0, host: "127.0.0.1" });
    servers.push(server);
    const before = memory();
    redis.pause();
    // 50 MiB of broadcasts with history, none waited for: as a busy app sends them.
    const pad = "x".repeat(100 * 1024);
    const sent: Promise<number>[] = [];
    for (let i = 0; i < 500; i++) sent.push(app.channels.feed({ pad }));
    // Once they reached the relay, within the command timeout: what is still held.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const peak = hubOf(app).relay?.stats?.pendingBytes ?? 0;
    const held = memory() - before;
    console.log(
      `stalled Redis: 50 MiB of broadcasts with history sent, ${(peak / MiB).toFixed(2)} MiB ` +
        `pending, ${(held / MiB).toFixed(1)} MiB held`,
    );
    // Each resolves: refused at once past the bound, the others after the command timeout.
    const started = Date.now();
    await Promise.all(sent);
    expect(Date.now() - started).toBeLessThan(3000);
    const stats = hubOf(app).relay?.stats;
    expect(peak).toBeLessThanOrEqual(2 * MiB);
    expect(peak).toBeGreaterThan(1 * MiB);
    expect(stats?.lost).toBeGreaterThanOrEqual(480);
    // Before: every broadcast waited for Redis, 65 MiB of heap for 50 MiB sent.
    expect(held).toBeLessThan(12 * MiB);
    // Told once, not once per broadcast.
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors.length).toBeLessThanOrEqual(3);
    expect(errors.join("\n")).toContain("Redis at");

    // Answering again: broadcasts are kept and numbered again, the pending bytes let go.
    redis.resume();
    const c = await openClient(server.url);
    sockets.push(c);
    expect(await c.request({ type: "subscribe", channel: "feed" }, 5000)).toMatchObject({
      type: "subscribed",
    });
    await app.channels.feed({ pad: "back" });
    // What failed at once while earlier broadcasts were late waited for them (in order, at
    // most MAX_WAITING_BYTES of it): it may reach this subscriber first, without an offset.
    let frame = await c.next(5000);
    let waited = 0;
    while ((frame.data as { pad?: string }).pad === pad) {
      expect(frame.offset).toBeUndefined();
      waited++;
      frame = await c.next(5000);
    }
    expect(waited * pad.length).toBeLessThanOrEqual(MAX_WAITING_BYTES);
    expect(frame).toMatchObject({
      type: "data",
      data: { pad: "back" },
      offset: expect.any(Number),
    });
    expect(hubOf(app).relay?.stats?.pendingBytes).toBe(0);
  });

  it("answers a subscribe with history or presence within the command timeouts, not the handler's", async () => {
    const { app } = stalledApp(redis.url);
    const server = await serve(app, { port: 0, host: "127.0.0.1" });
    servers.push(server);
    const c = await openClient(server.url);
    sockets.push(c);
    redis.pause();
    let started = Date.now();
    // Before: it waited for handlerTimeout (30 s).
    expect(await c.request({ type: "subscribe", channel: "feed", id: 1 }, 5000)).toEqual({
      type: "subscribed",
      channel: "feed",
      id: 1,
    });
    expect(Date.now() - started).toBeLessThan(2000);
    started = Date.now();
    // The members it knows here, rather than none.
    expect(
      await c.request({ type: "subscribe", channel: "lobby", presence: true, id: 2 }, 5000),
    ).toMatchObject({ type: "subscribed", channel: "lobby", count: 1, id: 2 });
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
