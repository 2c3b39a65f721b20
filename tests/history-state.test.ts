// What a client can make the server or the broker keep through channels with history, and
// when it is let go: a subscribe to a name nothing was broadcast on keeps nothing (memory,
// Redis), a name left is kept heard only when its stream holds something, within bounds
// per instance and per connection (NATS), a stream is bounded in bytes, and a recovery
// reads from Redis only what it may send. Real sockets, real redis-server and nats-server.
import { Redis } from "ioredis";
import * as v from "valibot";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type NodeServer, serve } from "../adapters/node.ts";
import { natsRelay } from "../relays/nats.ts";
import { redisRelay } from "../relays/redis.ts";
import { hubOf } from "../src/adapter.ts";
import { type LimitOptions, MemoryHistory, type Relay, SocketAPI } from "../src/index.ts";
import { type Broker, startNats, startRedis } from "./helpers/brokers.ts";
import { openClient, type WsClient } from "./helpers/ws-client.ts";

function historyApp(options: { relay?: Relay; history?: MemoryHistory } & LimitOptions = {}) {
  const errors: unknown[] = [];
  const app = new SocketAPI({ ...options, onError: (error) => errors.push(error) })
    .channel(
      "rooms/{room}",
      {
        params: v.object({ room: v.string(), text: v.optional(v.string(), "") }),
        history: { size: 100, ttl: 600_000 },
      },
      ({ text }) => ({ text }),
    )
    .channel(
      "big",
      {
        params: v.object({ pad: v.optional(v.string(), "") }),
        history: { size: 1000, ttl: 600_000, maxBytes: 64 * 1024 },
      },
      ({ pad }) => ({ pad }),
    );
  return { app, errors };
}

const servers: NodeServer[] = [];
const sockets: WsClient[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.ws.terminate();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function served(app: ReturnType<typeof historyApp>["app"]): Promise<NodeServer> {
  const server = await serve(app, { port: 0, host: "127.0.0.1" });
  servers.push(server);
  return server;
}

async function client(url: string): Promise<WsClient> {
  const opened = await openClient(url);
  sockets.push(opened);
  return opened;
}

/** Subscribes to and leaves `count` distinct rooms, one after the other. */
async function churn(c: WsClient, count: number, from = 0): Promise<void> {
  for (let i = from; i < from + count; i++) {
    const channel = `rooms/${i}`;
    expect(await c.request({ type: "subscribe", channel, id: i })).toMatchObject({
      type: "subscribed",
      offset: 0,
    });
    expect(await c.request({ type: "unsubscribe", channel, id: i })).toMatchObject({
      type: "unsubscribed",
    });
  }
}

describe("a channel with history, in one process", () => {
  it("keeps nothing for 1,000 names subscribed to and left without a broadcast", async () => {
    const history = new MemoryHistory();
    const { app } = historyApp({ history, rateLimit: false });
    const server = await served(app);
    const c = await client(server.url);
    await churn(c, 1000);
    // Before: a stream (about 600 B) per name, kept for the ttl.
    expect(history.streams).toBe(0);
    expect(history.bytes).toBe(0);
  });

  it("keeps a stream within its maxBytes, dropping the oldest broadcasts", async () => {
    const history = new MemoryHistory();
    const { app } = historyApp({ history });
    await served(app);
    // 100 broadcasts of 4 KiB on a channel keeping at most 64 KiB.
    for (let i = 0; i < 100; i++) await app.channels.big({ pad: "x".repeat(4096) });
    expect(history.streams).toBe(1);
    expect(history.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(history.bytes).toBeGreaterThan(60 * 1024);
  });

  it("keeps every stream within the store's maxBytes, dropping those written to least recently", async () => {
    const history = new MemoryHistory({ maxBytes: 200 * 1024 });
    const { app } = historyApp({ history });
    const server = await served(app);
    const c = await client(server.url);
    await c.request({ type: "subscribe", channel: "rooms/0" });
    await app.channels["rooms/{room}"]({ room: "0", text: "first" });
    const kept = await c.next();
    expect(kept).toMatchObject({ offset: 1 });
    c.ws.terminate();
    for (let room = 1; room < 100; room++) {
      await app.channels["rooms/{room}"]({ room: String(room), text: "y".repeat(10_000) });
    }
    expect(history.bytes).toBeLessThanOrEqual(200 * 1024);
    expect(history.streams).toBeLessThan(25);
    // The oldest was dropped: a client that held its position is told it cannot recover.
    const back = await client(server.url);
    expect(
      await back.request({
        type: "subscribe",
        channel: "rooms/0",
        since: { offset: 1, epoch: kept.epoch },
      }),
    ).toMatchObject({ offset: 0, recovered: false });
    // The newest is kept, whole.
    expect(await back.request({ type: "subscribe", channel: "rooms/99" })).toMatchObject({
      offset: 1,
    });
  });
});

describe("a channel with history over NATS, kept in memory", () => {
  let nats: Broker & { readonly monitorUrl: string | undefined };
  beforeAll(async () => {
    nats = await startNats({ monitor: true });
  });
  afterAll(async () => {
    await nats?.kill();
  });

  /** How many subscriptions the NATS server holds for every client. */
  async function subscriptions(): Promise<number> {
    const response = await fetch(`${nats.monitorUrl}/subsz`);
    return ((await response.json()) as { num_subscriptions: number }).num_subscriptions;
  }

  it("stops hearing a name at once when its stream keeps nothing: no subscription, no timer left", async () => {
    const history = new MemoryHistory();
    const { app } = historyApp({ history, relay: natsRelay(nats.url) });
    const server = await served(app);
    const before = await subscriptions();
    const c = await client(server.url);
    await churn(c, 300);
    // Before: each of the 300 kept its NATS subscription and a timer for the ttl (600 s).
    expect(hubOf(app).history?.lingeringCount).toBe(0);
    expect(history.streams).toBe(0);
    // The server counts an unsubscribe when it has read it: soon, not at once.
    await vi.waitFor(async () => expect(await subscriptions()).toBe(before), { timeout: 3000 });
  });

  it("keeps heard at most maxSubscriptions names one connection left, and maxLingeringChannels in all", async () => {
    const history = new MemoryHistory();
    const { app } = historyApp({
      history,
      relay: natsRelay(nats.url),
      maxSubscriptions: 20,
      maxLingeringChannels: 50,
    });
    const server = await served(app);
    const before = await subscriptions();
    // Each name left holds a broadcast: worth hearing for a client coming back.
    const epochs = new Map<number, unknown>();
    const leave = async (c: WsClient, from: number, count: number) => {
      for (let i = from; i < from + count; i++) {
        const channel = `rooms/${i}`;
        await c.request({ type: "subscribe", channel, id: i });
        await app.channels["rooms/{room}"]({ room: String(i), text: "hi" });
        const data = await c.next();
        expect(data).toMatchObject({ type: "data", offset: 1 });
        epochs.set(i, data.epoch);
        await c.request({ type: "unsubscribe", channel, id: i });
      }
    };
    const one = await client(server.url);
    await leave(one, 0, 60);
    expect(hubOf(app).history?.lingeringCount).toBe(20);
    // Two more connections: 20 each, 50 in all, the oldest ten heard no more.
    await leave(await client(server.url), 100, 20);
    await leave(await client(server.url), 200, 20);
    expect(hubOf(app).history?.lingeringCount).toBe(50);
    await vi.waitFor(async () => expect(await subscriptions()).toBe(before + 50), {
      timeout: 3000,
    });
    const back = await client(server.url);
    const since = (room: number) => ({ offset: 1, epoch: epochs.get(room) });
    // Heard no more: its stream was dropped, a client coming back cannot recover.
    for (const room of [0, 9, 25]) {
      expect(
        await back.request({ type: "subscribe", channel: `rooms/${room}`, since: since(room) }),
      ).toMatchObject({ offset: 0, recovered: false });
    }
    // Still heard: whole.
    for (const room of [10, 19, 100, 219]) {
      expect(
        await back.request({ type: "subscribe", channel: `rooms/${room}`, since: since(room) }),
      ).toMatchObject({ offset: 1, recovered: true });
    }
  });
});

describe("a channel with history over Redis", () => {
  let redis: Broker;
  let inspect: Redis;
  beforeAll(async () => {
    redis = await startRedis();
    inspect = new Redis(redis.url);
  });
  afterAll(async () => {
    inspect?.disconnect();
    await redis?.kill();
  });

  it("writes nothing to Redis for 300 names subscribed to and left without a broadcast", async () => {
    const prefix = `churn${Date.now()}:`;
    const { app } = historyApp({ relay: redisRelay({ url: redis.url, prefix }) });
    const server = await served(app);
    await churn(await client(server.url), 300);
    // Before: a history-meta key per name, for the ttl.
    expect(await inspect.keys(`${prefix}*`)).toEqual([]);
  });

  it("reads nothing for a subscribe whose answer is known: already subscribed, or too far back", async () => {
    const prefix = `amp${Date.now()}:`;
    const { app } = historyApp({ relay: redisRelay({ url: redis.url, prefix }) });
    const server = await served(app);
    // 100 broadcasts of 8 KiB kept (the last 64 KiB of them).
    for (let i = 0; i < 100; i++) await app.channels.big({ pad: "x".repeat(8192) });
    // Redis keeps the stream within its maxBytes (64 KiB): the oldest entries dropped.
    const kept = await inspect.xrange(`${prefix}history:big`, "-", "+");
    const bytes = kept.reduce((sum, [, fields]) => sum + Buffer.byteLength(fields[1] ?? ""), 0);
    expect(bytes).toBeLessThanOrEqual(64 * 1024);
    expect(kept.length).toBe(7);
    expect(Number(await inspect.hget(`${prefix}history-meta:big`, "bytes"))).toBe(bytes);
    const c = await client(server.url);
    const first = await c.request({ type: "subscribe", channel: "big" });
    expect(first).toMatchObject({ offset: 100 });
    const sent = async () =>
      Number(/total_net_output_bytes:(\d+)/.exec(await inspect.info("stats"))?.[1]);
    const before = await sent();
    // Already subscribed: whatever since says, nothing can be sent.
    for (let i = 0; i < 50; i++) {
      expect(
        await c.request({
          type: "subscribe",
          channel: "big",
          since: { offset: 95, epoch: first.epoch },
        }),
      ).toMatchObject({ type: "subscribed", recovered: false });
    }
    // Another connection, from further back than the stream keeps.
    const other = await client(server.url);
    for (let i = 0; i < 50; i++) {
      expect(
        await other.request({
          type: "subscribe",
          channel: "big",
          since: { offset: 1, epoch: first.epoch },
        }),
      ).toMatchObject({ recovered: false });
      await other.request({ type: "unsubscribe", channel: "big" });
    }
    // Before: up to 64 KiB read and shipped per subscribe (6.4 MiB for these 100).
    expect((await sent()) - before).toBeLessThan(100 * 1024);
  });
});
