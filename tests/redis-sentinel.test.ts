// The Redis relay through Sentinel (a primary, a replica and three Sentinels, started
// here): the primary stops in its tracks (SIGSTOP) mid-broadcast, the Sentinels promote the
// replica, and the relay follows without a restart. The gap is measured, the loss counted
// and told, the health shows it while it lasts; history and presence go on afterwards, and
// a client recovering across the failover is told it was not recovered, or gets exactly
// what it missed.
import * as v from "valibot";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type NodeServer, serve } from "../adapters/node.ts";
import { redisRelay } from "../relays/redis.ts";
import { type Relay, type RelayHealth, type RelayStats, SocketAPI } from "../src/index.ts";
import { type RedisSentinels, startRedisSentinels } from "./helpers/brokers.ts";
import type { Frame } from "./helpers/fake-client.ts";
import { type ServerProcess, startServer } from "./helpers/server-process.ts";
import { openClient, type WsClient } from "./helpers/ws-client.ts";

let watched: RedisSentinels;
const servers: NodeServer[] = [];
const sockets: WsClient[] = [];

beforeAll(async () => {
  watched = await startRedisSentinels();
}, 60_000);

afterAll(async () => {
  for (const socket of sockets) socket.ws.terminate();
  await Promise.all(servers.map((server) => server.close()));
  for (const node of watched?.redis ?? []) node.resume();
  await watched?.kill();
});

async function instance(errors: unknown[]) {
  const relay = redisRelay({
    sentinels: watched.addresses,
    sentinelName: watched.name,
    presenceHeartbeat: 200,
  });
  const app = new SocketAPI<{ user: string }>({
    relay,
    onConnect: (request) => ({ user: new URL(request.url).searchParams.get("user") ?? "x" }),
    userId: (connection) => connection.state.user,
    onError: (error) => errors.push(error),
  }).channel(
    "rooms/{room}",
    {
      params: v.object({ room: v.string(), seq: v.optional(v.number(), 0) }),
      history: { size: 1000, ttl: 60_000 },
      presence: (ctx) => ctx.connection.state.user,
    },
    ({ seq }) => ({ seq }),
  );
  const server = await serve(app, { port: 0, host: "127.0.0.1" });
  servers.push(server);
  return { app, server, relay: relay as Relay & { stats: RelayStats; health: RelayHealth } };
}

async function client(url: string, user: string): Promise<WsClient> {
  const opened = await openClient(`${url}?user=${user}`);
  sockets.push(opened);
  return opened;
}

describe("socketapi --redis-sentinel", () => {
  it("relays between two commands over the primary the Sentinels name", async () => {
    const started: ServerProcess[] = [];
    try {
      for (const name of ["a", "b"]) {
        const command = [
          ...["node", "adapters/node-cli.js", "tests/servers/scaling-app.ts", "--port", "{port}"],
          ...["--redis-sentinel", `${watched.addresses.join(",")}/${watched.name}`],
        ];
        started.push(await startServer(command, { env: { INSTANCE: name } }));
      }
      const [a, b] = started as [ServerProcess, ServerProcess];
      const onB = await client(b.url, "b");
      await onB.request({ type: "subscribe", channel: "news" });
      const onA = await client(a.url, "a");
      await onA.request({ type: "action", channel: "burst", data: { count: 2 }, id: 1 });
      expect((await onB.dataUntilQuiet()).map((frame) => frame.data)).toEqual([
        { seq: 0, from: "a" },
        { seq: 1, from: "a" },
      ]);
    } finally {
      await Promise.all(started.map((server) => server.stop()));
    }
  }, 60_000);
});

describe("Redis through Sentinel", () => {
  it("follows a failover from a stopped primary within 15 s; history and presence go on", async () => {
    const errors: unknown[] = [];
    const [a, b] = [await instance(errors), await instance(errors)];
    const listener = await client(b.server.url, "lea");
    await listener.request({ type: "subscribe", channel: "rooms/s", presence: true });
    const away = await client(b.server.url, "avi");
    await away.request({ type: "subscribe", channel: "rooms/s" });
    const received: { seq: number; at: number }[] = [];
    listener.ws.on("message", (data) => {
      const frame = JSON.parse(String(data));
      if (frame.type === "data") received.push({ seq: frame.data.seq, at: Date.now() });
    });
    let seq = 0;
    let running = true;
    const sending = (async () => {
      while (running) {
        seq++;
        await a.app.channels["rooms/{room}"]({ room: "s", seq });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    await vi.waitUntil(() => received.length >= 20, { timeout: 20_000, interval: 25 });
    away.ws.terminate();
    await away.closed;
    const seenBefore = away.frames
      .map((text) => JSON.parse(text) as Frame)
      .filter((frame) => frame.type === "data")
      .at(-1) as Frame;
    const old = await watched.primary();
    const stoppedAt = Date.now();
    const before = received.length;
    old.pause();
    const states = new Set<string>();
    await vi.waitUntil(
      () => {
        states.add(a.relay.health.status);
        return received.length > before + 20;
      },
      { timeout: 15_000, interval: 25 },
    );
    running = false;
    await sending;
    let gap = 0;
    for (let i = 1; i < received.length; i++) {
      const at = received[i]?.at ?? 0;
      if (at >= stoppedAt) gap = Math.max(gap, at - (received[i - 1]?.at ?? 0));
    }
    console.log(
      `Sentinel failover: no delivery for ${gap} ms, health seen: ${[...states].join(", ")}`,
    );
    expect(await watched.primary()).not.toBe(old);
    expect(gap).toBeLessThan(15_000);
    expect([...states].some((status) => status !== "ok")).toBe(true);
    const seqs = received.map((entry) => entry.seq);
    // The switch is told, never silent: each instance's connections moved to the new
    // primary (counted in disconnects, reported to onError); what a broadcast's own
    // command lost is counted in lost. The listener's instance, subscribed again, caught
    // up from the history with what was broadcast before it did: the listener got every
    // broadcast that was not counted lost, once each.
    await vi.waitUntil(() => received.length >= seq - a.relay.stats.lost, {
      timeout: 5000,
      interval: 25,
    });
    expect(received.length).toBe(seq - a.relay.stats.lost);
    console.log(
      `sent ${seq}, received ${seqs.length}, lost (counted) ${a.relay.stats.lost}, ` +
        `outages told ${errors.length}`,
    );
    expect(a.relay.stats.disconnects).toBeGreaterThanOrEqual(1);
    expect(b.relay.stats.disconnects).toBeGreaterThanOrEqual(1);
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(seqs.length);

    // Across the failover: not recovered, or exactly what was missed.
    const again = await client(a.server.url, "avi");
    const answer = await again.request({
      type: "subscribe",
      channel: "rooms/s",
      since: { offset: seenBefore.offset, epoch: seenBefore.epoch },
    });
    console.log(`a recovery across the Sentinel failover: recovered ${answer.recovered}`);
    if (answer.recovered === true) {
      const missed = await again.dataUntilQuiet();
      expect(missed.map((frame) => frame.offset)).toEqual(
        Array.from(
          { length: (answer.offset as number) - (seenBefore.offset as number) },
          (_, i) => (seenBefore.offset as number) + 1 + i,
        ),
      );
    } else {
      expect(answer.recovered).toBe(false);
    }
    await again.dataUntilQuiet();
    // After it, history is whole again: away and back, exactly what was missed.
    for (let i = 0; i < 3; i++) await a.app.channels["rooms/{room}"]({ room: "s", seq: ++seq });
    const position = (await again.dataUntilQuiet()).at(-1) as Frame;
    again.ws.terminate();
    for (let i = 0; i < 3; i++) await b.app.channels["rooms/{room}"]({ room: "s", seq: ++seq });
    const back = await client(b.server.url, "avi");
    expect(
      await back.request({
        type: "subscribe",
        channel: "rooms/s",
        since: { offset: position.offset, epoch: position.epoch },
      }),
    ).toMatchObject({ recovered: true });
    expect(
      (await back.dataUntilQuiet()).map((frame) => (frame.data as { seq: number }).seq),
    ).toEqual([seq - 2, seq - 1, seq]);
    // Presence on the new primary: a join is seen on the other instance.
    const newcomer = await client(a.server.url, "neo");
    await newcomer.request({ type: "subscribe", channel: "rooms/s" });
    expect(
      await listener.take((frame) => frame.type === "join" && frame.user === "neo", 5000),
    ).toMatchObject({ channel: "rooms/s" });
    await vi.waitUntil(() => a.relay.health.status === "ok", { timeout: 10_000, interval: 25 });
    old.resume();
  }, 60_000);
});
