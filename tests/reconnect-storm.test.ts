// The reconnect storm, short (the long one is `npm run bench -- --storm-only`): typed
// clients subscribed to channels with history, broadcasts flowing from another instance;
// the clients' server is killed (SIGKILL) and started again on its port. Every client
// comes back by itself and gets exactly what it missed (Redis history), or is told it
// cannot (memory history: a reset); none misses a broadcast without a word, none gets one
// twice, none gives up; with `connectRate`, the upgrades past it are refused with 503 and
// retried until all are in.
import { afterEach, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import type { StormApp } from "../bench/storm/socketapi-server.ts";
import { createClient, type SocketAPIClient } from "../src/client/index.ts";
import { type Broker, startRedis } from "./helpers/brokers.ts";
import { type ServerProcess, startServer } from "./helpers/server-process.ts";

const SERVER = [process.execPath, "--import", "tsx", "bench/storm/socketapi-server.ts"];
const CLIENTS = 400;

/** One client: what it received of its channel, and what it was told. */
interface Watched {
  client: SocketAPIClient<StormApp>;
  offsets: number[];
  epochs: Set<string>;
  recoveredFrames: number;
  resets: number;
  /** Frames after the kill (any: missed ones, or live), and resets after it. */
  after: number;
  refusals: number[];
}

const cleanups: (() => Promise<unknown> | undefined)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function stormOf({
  redis,
  connectRate,
}: {
  redis: Broker | undefined;
  connectRate?: number;
}): Promise<{ watched: Watched[]; killedAt: number }> {
  const env = {
    ...(redis ? { REDIS_URL: redis.url } : {}),
    ...(connectRate ? { CONNECT_RATE: String(connectRate) } : {}),
  };
  // Over Redis, another instance broadcasts (and goes on while the server is down);
  // with memory history, the server itself.
  if (redis) {
    const publisher = await startServer(SERVER, { env: { ...env, PUBLISH_EVERY: "100" } });
    cleanups.push(() => publisher.stop());
  }
  const serverEnv = redis ? env : { ...env, PUBLISH_EVERY: "100" };
  let server: ServerProcess = await startServer(SERVER, { env: serverEnv });
  cleanups.push(() => server.stop());
  const watched: Watched[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const client = createClient<StormApp>(server.url, {
      WebSocket,
      reconnect: { initialDelay: 100, maxDelay: 1000 },
    });
    cleanups.push(async () => client.close());
    const watch: Watched = {
      client,
      offsets: [],
      epochs: new Set(),
      recoveredFrames: 0,
      resets: 0,
      after: 0,
      refusals: [],
    };
    client.onError((error) => {
      if (error.status !== undefined) watch.refusals.push(error.status);
    });
    watched.push(watch);
    client.subscribe(`rooms/${i % 20}`, {
      data: (_data, info) => {
        watch.after++;
        if (info.recovered) watch.recoveredFrames++;
        if (info.offset !== undefined) watch.offsets.push(info.offset);
        if (info.epoch !== undefined) watch.epochs.add(info.epoch);
      },
      reset: () => {
        watch.resets++;
        watch.after++;
        // A new stream: the offsets start again.
        watch.offsets.push(-1);
      },
    });
  }
  await vi.waitUntil(() => watched.every((watch) => watch.offsets.length >= 2), {
    timeout: 30_000,
    interval: 50,
  });
  for (const watch of watched) {
    watch.after = 0;
    watch.refusals.length = 0;
  }
  const killedAt = Date.now();
  server.child.kill("SIGKILL");
  await new Promise((resolve) => server.child.once("exit", resolve));
  await new Promise((resolve) => setTimeout(resolve, 300));
  server = await startServer(SERVER, { env: serverEnv, port: server.port });
  // Back: a frame (missed or live) or a reset since the kill, and the socket open.
  await vi.waitUntil(
    () => watched.every((watch) => watch.after > 0 && watch.client.status === "open"),
    { timeout: 60_000, interval: 50 },
  );
  return { watched, killedAt };
}

/** Offsets seen twice, and holes no reset told of. */
function defectsOf(offsets: readonly number[]): { duplicates: number; holes: number } {
  let duplicates = 0;
  let holes = 0;
  for (let i = 1; i < offsets.length; i++) {
    const before = offsets[i - 1] as number;
    const now = offsets[i] as number;
    if (before === -1 || now === -1) continue;
    if (now <= before) duplicates++;
    else if (now !== before + 1) holes++;
  }
  return { duplicates, holes };
}

describe("a reconnect storm", () => {
  it(`brings ${CLIENTS} clients back over Redis history with exactly what each missed`, async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.kill());
    const { watched, killedAt } = await stormOf({ redis });
    console.log(`storm over Redis: ${CLIENTS} clients back in ${Date.now() - killedAt} ms`);
    for (const watch of watched) {
      expect(defectsOf(watch.offsets)).toEqual({ duplicates: 0, holes: 0 });
      expect(watch.resets).toBe(0);
      expect(watch.epochs.size).toBe(1);
      expect(watch.client.status).toBe("open");
    }
    // Broadcasts went on while the server was down: the clients got them back.
    expect(watched.filter((watch) => watch.recoveredFrames > 0).length).toBeGreaterThan(
      CLIENTS * 0.9,
    );
  }, 120_000);

  it("tells every client of a memory history that what it missed is gone (a reset), none silently", async () => {
    const { watched } = await stormOf({ redis: undefined });
    // The broadcasts of the new stream follow each reset.
    await vi.waitUntil(() => watched.every((watch) => watch.offsets.at(-1) !== -1), {
      timeout: 10_000,
    });
    for (const watch of watched) {
      expect(watch.resets).toBe(1);
      expect(defectsOf(watch.offsets)).toEqual({ duplicates: 0, holes: 0 });
      // The old stream, then the new one the restarted server began.
      expect(watch.epochs.size).toBe(2);
    }
  }, 120_000);

  it("with connectRate, refuses the upgrades past it with 503, and every client still gets in and recovers", async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.kill());
    const { watched } = await stormOf({ redis, connectRate: 200 });
    const refused = watched.flatMap((watch) => watch.refusals);
    expect(refused.length).toBeGreaterThan(0);
    expect(new Set(refused)).toEqual(new Set([503]));
    for (const watch of watched) {
      expect(defectsOf(watch.offsets)).toEqual({ duplicates: 0, holes: 0 });
      expect(watch.resets).toBe(0);
    }
  }, 120_000);
});
