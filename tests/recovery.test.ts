// Channel history and recovery over real sockets: a client that was away gets exactly what
// it missed, in order, then live broadcasts, with no gap and no duplicate at the seam; in
// one process (memory), across instances (Redis Streams), and with the typed client.
import * as v from "valibot";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { type NodeServer, serve } from "../adapters/node.ts";
import { redisRelay } from "../relays/redis.ts";
import { recoveryOf, stampedFrame } from "../src/adapter.ts";
import { createClient, type DataInfo } from "../src/client/index.ts";
import {
  type HistoryStore,
  MemoryHistory,
  type Relay,
  type SharedHistoryStore,
  SocketAPI,
} from "../src/index.ts";
import { type Broker, startRedis } from "./helpers/brokers.ts";
import { openClient, type WsClient } from "./helpers/ws-client.ts";

type Frame = Record<string, unknown>;

/** The app of these tests: channels with history of several sizes, and one without. */
function recoveryApp(options: { relay?: Relay; history?: HistoryStore } = {}) {
  const onError = vi.fn();
  const seq = v.object({ seq: v.optional(v.number(), 0) });
  const app = new SocketAPI({ ...options, onError })
    .channel("feed", { params: seq, history: { size: 1000, ttl: 60_000 } }, (p) => p)
    .channel("small", { params: seq, history: { size: 5, ttl: 60_000 } }, (p) => p)
    .channel("brief", { params: seq, history: { size: 100, ttl: 300 } }, (p) => p)
    .channel(
      "snapshot",
      {
        params: v.object({ seq: v.optional(v.number(), -1) }),
        history: { size: 100, ttl: 60_000 },
        initialData: true,
      },
      (p) => p,
    )
    .channel(
      "rooms/{room}",
      {
        params: v.object({ room: v.string(), seq: v.optional(v.number(), 0) }),
        history: { size: 50, ttl: 60_000 },
      },
      ({ seq }) => ({ seq }),
    )
    .channel("plain", { params: seq }, (p) => p)
    .action(
      "burst",
      { input: v.object({ channel: v.picklist(["feed", "small", "plain"]), count: v.number() }) },
      async ({ channel, count }, ctx) => {
        for (let i = 0; i < count; i++) await ctx.channels[channel]({ seq: i });
        return count;
      },
    );
  return { app, onError };
}

type RecoveryApp = ReturnType<typeof recoveryApp>["app"];

const servers: NodeServer[] = [];
const sockets: WsClient[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.ws.terminate();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function served(app: RecoveryApp, port = 0): Promise<NodeServer> {
  const server = await serve(app, { port, host: "127.0.0.1" });
  servers.push(server);
  return server;
}

async function client(url: string): Promise<WsClient> {
  const opened = await openClient(url);
  sockets.push(opened);
  return opened;
}

/** The next `count` data frames a client receives. */
async function dataFrames(c: WsClient, count: number, ms = 5000): Promise<Frame[]> {
  const frames: Frame[] = [];
  while (frames.length < count) {
    const frame = await c.next(ms);
    expect(frame.type).toBe("data");
    frames.push(frame);
  }
  return frames;
}

const seqs = (frames: Frame[]) => frames.map((frame) => (frame.data as { seq: number }).seq);
const offsets = (frames: Frame[]) => frames.map((frame) => frame.offset as number);
const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Broadcasts `count` times on a channel from outside any connection. */
async function broadcast(
  app: RecoveryApp,
  channel: "feed" | "small" | "brief",
  from: number,
  count: number,
) {
  for (let i = 0; i < count; i++) await app.channels[channel]({ seq: from + i });
}

describe("a channel with history, in one process", () => {
  it("stamps each broadcast with an increasing offset and the stream's epoch; subscribed says where the stream is", async () => {
    const { app } = recoveryApp();
    const server = await served(app);
    await broadcast(app, "feed", 0, 3);
    const c = await client(server.url);
    const subscribed = await c.request({ type: "subscribe", channel: "feed", id: 1 });
    expect(subscribed).toEqual({
      type: "subscribed",
      channel: "feed",
      offset: 3,
      epoch: expect.stringMatching(/^[0-9a-z-]{1,64}$/),
      id: 1,
    });
    await broadcast(app, "feed", 3, 2);
    expect(await dataFrames(c, 2)).toEqual([
      { type: "data", channel: "feed", data: { seq: 3 }, offset: 4, epoch: subscribed.epoch },
      { type: "data", channel: "feed", data: { seq: 4 }, offset: 5, epoch: subscribed.epoch },
    ]);
  });

  it("sends a subscriber that was away exactly the 100 broadcasts it missed, in order, then live ones", async () => {
    const { app } = recoveryApp();
    const server = await served(app);
    const first = await client(server.url);
    const { epoch } = await first.request({ type: "subscribe", channel: "feed" });
    await broadcast(app, "feed", 0, 10);
    const seen = await dataFrames(first, 10);
    first.ws.terminate();
    await broadcast(app, "feed", 10, 100);

    const again = await client(server.url);
    // A position is the offset and epoch of the last broadcast received (the stream was
    // made by its first broadcast: before it, subscribed gave an empty stream's position).
    const last = seen.at(-1) as Frame;
    expect(epoch).toMatch(/^e-/);
    expect(last.epoch).not.toBe(epoch);
    expect(
      await again.request({
        type: "subscribe",
        channel: "feed",
        since: { offset: last.offset, epoch: last.epoch },
      }),
    ).toEqual({
      type: "subscribed",
      channel: "feed",
      offset: 110,
      epoch: last.epoch,
      recovered: true,
    });
    const missed = await dataFrames(again, 100);
    expect(seqs(missed)).toEqual(range(10, 109));
    expect(offsets(missed)).toEqual(range(11, 110));
    await broadcast(app, "feed", 110, 2);
    expect(offsets(await dataFrames(again, 2))).toEqual([111, 112]);
    await again.expectNone();
  });

  it("loses nothing and sends nothing twice when broadcasts keep flowing during the recovery", async () => {
    const { app } = recoveryApp();
    const server = await served(app);
    const first = await client(server.url);
    const { epoch } = await first.request({ type: "subscribe", channel: "feed" });
    first.ws.terminate();
    await broadcast(app, "feed", 0, 50);
    // Broadcasts keep coming while the client comes back.
    let next = 50;
    let flowing = true;
    const flow = (async () => {
      while (flowing) {
        await app.channels.feed({ seq: next++ });
        // About a thousand a second: the history (1,000) holds what the recovery must read.
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    })();
    const again = await client(server.url);
    const answer = await again.request(
      { type: "subscribe", channel: "feed", since: { offset: 0, epoch } },
      5000,
    );
    expect(answer).toMatchObject({ recovered: true });
    await new Promise((resolve) => setTimeout(resolve, 100));
    flowing = false;
    await flow;
    const frames = await dataFrames(again, next);
    expect(offsets(frames)).toEqual(range(1, next));
    expect(seqs(frames)).toEqual(range(0, next - 1));
    await again.expectNone();
  });

  it("says recovered: false when the history was trimmed by size, and sends nothing old", async () => {
    const { app } = recoveryApp();
    const server = await served(app);
    const c = await client(server.url);
    const { epoch } = await c.request({ type: "subscribe", channel: "small" });
    c.ws.terminate();
    await broadcast(app, "small", 0, 6);
    const again = await client(server.url);
    // The empty stream's position, from before the first broadcast: it missed all six.
    const answer = await again.request({
      type: "subscribe",
      channel: "small",
      since: { offset: 0, epoch },
    });
    expect(answer).toEqual({
      type: "subscribed",
      channel: "small",
      offset: 6,
      epoch: expect.stringMatching(/^[0-9a-f]{12}$/),
      recovered: false,
    });
    await again.expectNone();
    // Five back is still within the history.
    const third = await client(server.url);
    expect(
      await third.request({
        type: "subscribe",
        channel: "small",
        since: { offset: 1, epoch: answer.epoch },
      }),
    ).toMatchObject({
      recovered: true,
    });
    expect(offsets(await dataFrames(third, 5))).toEqual([2, 3, 4, 5, 6]);
  });

  it("says recovered: false when the broadcasts missed are older than the ttl", async () => {
    const { app } = recoveryApp();
    const server = await served(app);
    const c = await client(server.url);
    const { epoch } = await c.request({ type: "subscribe", channel: "brief" });
    c.ws.terminate();
    await broadcast(app, "brief", 0, 3);
    const soon = await client(server.url);
    expect(
      await soon.request({ type: "subscribe", channel: "brief", since: { offset: 0, epoch } }),
    ).toMatchObject({
      recovered: true,
    });
    expect(offsets(await dataFrames(soon, 3))).toEqual([1, 2, 3]);
    soon.ws.terminate();
    await new Promise((resolve) => setTimeout(resolve, 400));
    const late = await client(server.url);
    const answer = await late.request({
      type: "subscribe",
      channel: "brief",
      since: { offset: 0, epoch },
    });
    expect(answer).toMatchObject({ recovered: false });
    await late.expectNone();
  });

  it("says recovered: false after the server restarted (a new memory store, a new epoch)", async () => {
    const { app } = recoveryApp();
    const server = await served(app);
    const c = await client(server.url);
    const { epoch } = await c.request({ type: "subscribe", channel: "feed" });
    await broadcast(app, "feed", 0, 5);
    await dataFrames(c, 5);
    const port = server.port;
    await server.close();
    servers.splice(servers.indexOf(server), 1);

    const restarted = await served(recoveryApp().app, port);
    const again = await client(restarted.url);
    const answer = await again.request({
      type: "subscribe",
      channel: "feed",
      since: { offset: 5, epoch },
    });
    expect(answer).toMatchObject({ type: "subscribed", offset: 0, recovered: false });
    expect(answer.epoch).not.toBe(epoch);
  });

  it("answers a position from the future, another epoch or a malformed since with recovered: false", async () => {
    const { app } = recoveryApp();
    const server = await served(app);
    await broadcast(app, "feed", 0, 2);
    const c = await client(server.url);
    const { epoch } = await c.request({ type: "subscribe", channel: "feed" });
    const cases: unknown[] = [
      { offset: 3, epoch },
      { offset: 1, epoch: "another" },
      { offset: -1, epoch },
      { offset: 1.5, epoch },
      { offset: "1", epoch },
      { offset: 1, epoch: "e".repeat(65) },
      { offset: 1 },
      "1",
      null,
    ];
    for (const [i, since] of cases.entries()) {
      const fresh = await client(server.url);
      expect(await fresh.request({ type: "subscribe", channel: "feed", since, id: i })).toEqual({
        type: "subscribed",
        channel: "feed",
        offset: 2,
        epoch,
        recovered: false,
        id: i,
      });
      await fresh.expectNone();
    }
  });

  it("leaves a channel without history exactly as it was: since ignored, no offsets", async () => {
    const { app } = recoveryApp();
    const server = await served(app);
    const c = await client(server.url);
    expect(
      await c.request({
        type: "subscribe",
        channel: "plain",
        since: { offset: 0, epoch: "x" },
        id: 7,
      }),
    ).toEqual({
      type: "subscribed",
      channel: "plain",
      id: 7,
    });
    await app.channels.plain({ seq: 1 });
    expect(await c.next()).toEqual({ type: "data", channel: "plain", data: { seq: 1 } });
  });

  it("sends initial data on a fresh subscribe and after a reset, not after a recovery", async () => {
    const { app } = recoveryApp();
    const server = await served(app);
    const c = await client(server.url);
    const subscribed = await c.request({ type: "subscribe", channel: "snapshot" });
    expect(await c.next()).toEqual({ type: "data", channel: "snapshot", data: { seq: -1 } });
    c.ws.terminate();
    await app.channels.snapshot({ seq: 1 });

    const recovered = await client(server.url);
    const since = { offset: subscribed.offset, epoch: subscribed.epoch };
    expect(
      await recovered.request({ type: "subscribe", channel: "snapshot", since }),
    ).toMatchObject({ recovered: true });
    expect(await recovered.next()).toMatchObject({ data: { seq: 1 }, offset: 1 });
    await recovered.expectNone();

    const reset = await client(server.url);
    expect(
      await reset.request({
        type: "subscribe",
        channel: "snapshot",
        since: { offset: 0, epoch: "gone" },
      }),
    ).toMatchObject({
      recovered: false,
    });
    expect(await reset.next()).toEqual({ type: "data", channel: "snapshot", data: { seq: -1 } });
    await reset.expectNone();
  });

  it("keeps a stream per concrete name of a template", async () => {
    const { app } = recoveryApp();
    const server = await served(app);
    await app.channels["rooms/{room}"]({ room: "a", seq: 1 });
    await app.channels["rooms/{room}"]({ room: "a", seq: 2 });
    await app.channels["rooms/{room}"]({ room: "b", seq: 1 });
    const c = await client(server.url);
    expect(await c.request({ type: "subscribe", channel: "rooms/a" })).toMatchObject({ offset: 2 });
    expect(await c.request({ type: "subscribe", channel: "rooms/b" })).toMatchObject({ offset: 1 });
  });

  it("bounds what one recovery may send by the connection's send buffer: more is recovered: false", async () => {
    const onError = vi.fn();
    const app = new SocketAPI({ maxBufferedBytes: 20_000, onError }).channel(
      "big",
      {
        params: v.object({ pad: v.optional(v.string(), "") }),
        history: { size: 100, ttl: 60_000 },
      },
      (p) => p,
    );
    const server = await serve(app, { port: 0, host: "127.0.0.1" });
    servers.push(server);
    const c = await client(server.url);
    const { epoch } = await c.request({ type: "subscribe", channel: "big" });
    c.ws.terminate();
    for (let i = 0; i < 20; i++) await app.channels.big({ pad: "x".repeat(1000) });
    const again = await client(server.url);
    const answer = await again.request({
      type: "subscribe",
      channel: "big",
      since: { offset: 0, epoch },
    });
    expect(answer).toMatchObject({
      recovered: false,
      offset: 20,
    });
    await again.expectNone();
    const closer = await client(server.url);
    expect(
      await closer.request({
        type: "subscribe",
        channel: "big",
        since: { offset: 15, epoch: answer.epoch },
      }),
    ).toMatchObject({
      recovered: true,
    });
    expect(offsets(await dataFrames(closer, 5))).toEqual([16, 17, 18, 19, 20]);
  });

  it("the acting client gets its broadcast, stamped, before its action completes", async () => {
    const { app } = recoveryApp();
    const server = await served(app);
    const c = await client(server.url);
    await c.request({ type: "subscribe", channel: "feed" });
    c.send({ type: "action", channel: "burst", data: { channel: "feed", count: 3 }, id: "b" });
    const frames = [await c.next(), await c.next(), await c.next(), await c.next()];
    expect(frames.map((frame) => frame.type)).toEqual(["data", "data", "data", "action"]);
    expect(offsets(frames.slice(0, 3))).toEqual([1, 2, 3]);
  });
});

/**
 * A relay with a shared history store whose live copies arrive when the test says: what
 * Redis does when the read's answer (on the command connection) overtakes the live copy
 * (on the subscriber connection).
 */
function lateCopiesRelay() {
  const epoch = "sharedepoch1";
  const kept: string[] = [];
  const late: [string, string][] = [];
  let receive: ((channel: string, frame: string) => void) | undefined;
  const history: SharedHistoryStore = {
    shared: true,
    async publish(channel, frame) {
      kept.push(stampedFrame(frame, kept.length + 1, epoch));
      late.push([channel, kept.at(-1) as string]);
      return kept.length;
    },
    async recover(_channel, since, _options, maxBytes) {
      return recoveryOf({ offset: kept.length, epoch }, since, maxBytes, () => ({
        first: (since?.offset ?? 0) + 1,
        frames: kept.slice(since?.offset ?? 0),
      }));
    },
  };
  const relay: Relay = {
    history,
    open(given) {
      receive = given;
    },
    join() {},
    leave() {},
    publish: () => undefined,
    async close() {},
  };
  /** The live copies come, in order. */
  const arrive = () => {
    for (const [channel, frame] of late.splice(0)) receive?.(channel, frame);
  };
  return { relay, arrive, epoch };
}

describe("reading a channel's history from a handler", () => {
  it("gives the last broadcasts kept, oldest first, and reloads a client told reset after a restart", async () => {
    const made = () => {
      const { app } = recoveryApp();
      return app.action("recent", { input: v.object({ last: v.number() }) }, ({ last }, ctx) =>
        ctx.app.history("feed", { last }),
      );
    };
    const first = made();
    const server = await serve(first, { port: 0, host: "127.0.0.1" });
    const port = server.port;
    expect(await first.history("feed")).toEqual([]);
    const typed = createClient<ReturnType<typeof made>>(server.url, {
      WebSocket,
      reconnect: { initialDelay: 50, maxDelay: 100 },
    });
    const resets: string[] = [];
    let shown: unknown[] = [];
    const stop = typed.subscribe("feed", {
      data: () => {},
      reset: async () => {
        resets.push("reset");
        shown = (await typed.action("recent", { last: 3 })).map((entry) => entry.data);
      },
    });
    await stop.ready;
    await broadcast(first, "feed", 0, 5);
    const kept = await first.history("feed", { last: 2 });
    expect(kept.map((entry) => [entry.data, entry.offset])).toEqual([
      [{ seq: 3 }, 4],
      [{ seq: 4 }, 5],
    ]);
    // At most size, whatever last says; all it keeps without last.
    expect(await first.history("feed", { last: 10_000 })).toHaveLength(5);
    // The server restarts (its memory history gone); a broadcast comes before the client.
    await server.close();
    const second = made();
    const again = await serve(second, { port, host: "127.0.0.1" });
    servers.push(again);
    await broadcast(second, "feed", 100, 2);
    await vi.waitFor(() => expect(shown).toEqual([{ seq: 100 }, { seq: 101 }]), { timeout: 5000 });
    expect(resets).toEqual(["reset"]);
    typed.close();
  });
});

describe("a shared store whose live copies come after the read", () => {
  /** Broadcasts without waiting for their copies to come back. */
  const fire = (app: RecoveryApp, from: number, count: number) => {
    for (let i = 0; i < count; i++) void app.channels.feed({ seq: from + i });
  };

  it("drops the live copies at or below the recovered position: none sent twice", async () => {
    const { relay, arrive, epoch } = lateCopiesRelay();
    const { app } = recoveryApp({ relay });
    const server = await served(app);
    const stayed = await client(server.url);
    await stayed.request({ type: "subscribe", channel: "feed" });
    fire(app, 0, 3);
    await new Promise((resolve) => setTimeout(resolve, 20));
    arrive();
    expect(offsets(await dataFrames(stayed, 3))).toEqual([1, 2, 3]);
    // 4 and 5 are kept, their live copies not here yet when a client recovers from 1.
    fire(app, 3, 2);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const back = await client(server.url);
    expect(
      await back.request({ type: "subscribe", channel: "feed", since: { offset: 1, epoch } }),
    ).toMatchObject({ offset: 5, recovered: true });
    expect(offsets(await dataFrames(back, 4))).toEqual([2, 3, 4, 5]);
    // Now they come: the one that stayed gets them, the one that recovered does not again.
    arrive();
    expect(offsets(await dataFrames(stayed, 2))).toEqual([4, 5]);
    fire(app, 5, 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    arrive();
    expect(offsets(await dataFrames(back, 1))).toEqual([6]);
    await back.expectNone();
    // It leaves like any subscriber, also while the live copies are behind.
    fire(app, 6, 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const leaving = await client(server.url);
    await leaving.request({ type: "subscribe", channel: "feed", since: { offset: 6, epoch } });
    expect(offsets(await dataFrames(leaving, 1))).toEqual([7]);
    expect(app.subscriberCount("feed")).toBe(3);
    await leaving.request({ type: "unsubscribe", channel: "feed" });
    expect(app.subscriberCount("feed")).toBe(2);
    arrive();
    await leaving.expectNone();
  });
});

describe("the memory store", () => {
  const options = { size: 3, ttl: 1000 };
  const frame = (n: number) => `{"type":"data","channel":"c","data":${n}}`;

  it("keeps size broadcasts, expires them after ttl, and drops streams with nothing new for a ttl", () => {
    let now = 0;
    const store = new MemoryHistory(() => now);
    for (let n = 1; n <= 5; n++) store.append("c", frame(n), options);
    const { epoch } = store.recover("c", undefined, options, Infinity).position;
    expect(store.recover("c", { offset: 2, epoch }, options, Infinity)).toEqual({
      position: { offset: 5, epoch },
      recovered: true,
      frames: [3, 4, 5].map(
        (n) => `{"type":"data","channel":"c","data":${n},"offset":${n},"epoch":"${epoch}"}`,
      ),
    });
    expect(store.recover("c", { offset: 1, epoch }, options, Infinity).recovered).toBe(false);
    now = 999;
    store.append("c", frame(6), options);
    now = 1000;
    // 3, 4 and 5 expired; 6 is still there.
    expect(store.recover("c", { offset: 4, epoch }, options, Infinity).recovered).toBe(false);
    expect(store.recover("c", { offset: 5, epoch }, options, Infinity).frames).toHaveLength(1);
    // A subscribe to a channel nothing was broadcast on keeps nothing.
    expect(store.recover("d", undefined, options, Infinity).position).toEqual({
      offset: 0,
      epoch: expect.stringMatching(/^e-/),
    });
    expect(store.streams).toBe(1);
    store.append("d", frame(1), options);
    expect(store.streams).toBe(2);
    now = 3000;
    store.recover("e", undefined, options, Infinity);
    expect(store.streams).toBe(0);
    // The stream was dropped: its name starts again, under another epoch.
    const fresh = store.recover("c", { offset: 6, epoch }, options, Infinity);
    expect(fresh).toMatchObject({ recovered: false, position: { offset: 0 } });
    expect(fresh.position.epoch).not.toBe(epoch);
  });
});

describe("the typed client", () => {
  it("recovers what it missed by itself after a reconnect, and tells recovered broadcasts from live ones", async () => {
    const { app } = recoveryApp();
    const server = await served(app);
    const typed = createClient<RecoveryApp>(server.url, {
      WebSocket: WebSocket as never,
      reconnect: { initialDelay: 200, maxDelay: 200 },
    });
    const got: { seq: number; info: DataInfo }[] = [];
    const reset = vi.fn();
    const stop = typed.subscribe("feed", {
      data: (data, info) => got.push({ seq: data.seq, info }),
      reset,
    });
    await stop.ready;
    await broadcast(app, "feed", 0, 5);
    await vi.waitFor(() => expect(got).toHaveLength(5));
    const statuses: string[] = [];
    typed.onStatus((status) => statuses.push(status));
    // The server drops the connection; broadcasts go on while the client is away.
    for (const connection of app.connections) connection.close(1012, "restart");
    await broadcast(app, "feed", 5, 100);
    await vi.waitFor(() => expect(statuses).toContain("open"), { timeout: 5000 });
    expect(statuses[0]).not.toBe("open");
    await vi.waitFor(() => expect(got).toHaveLength(105), { timeout: 5000 });
    await broadcast(app, "feed", 105, 1);
    await vi.waitFor(() => expect(got).toHaveLength(106));
    expect(got.map((g) => g.seq)).toEqual(range(0, 105));
    expect(got.slice(5, 105).every((g) => g.info.recovered)).toBe(true);
    expect(got.slice(0, 5).some((g) => g.info.recovered)).toBe(false);
    expect(got[105]?.info).toMatchObject({ channel: "feed", offset: 106, recovered: false });
    expect(reset).not.toHaveBeenCalled();
    typed.close();
  });

  it("calls reset when what it missed cannot be recovered (the server restarted)", async () => {
    const { app } = recoveryApp();
    const server = await served(app);
    const typed = createClient<RecoveryApp>(server.url, {
      WebSocket: WebSocket as never,
      reconnect: { initialDelay: 20, maxDelay: 50 },
    });
    const seen: number[] = [];
    const reset = vi.fn();
    const stop = typed.subscribe("feed", { data: ({ seq }) => seen.push(seq), reset });
    await stop.ready;
    await broadcast(app, "feed", 0, 3);
    await vi.waitFor(() => expect(seen).toHaveLength(3));
    const port = server.port;
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    const made = recoveryApp();
    const restarted = made.app;
    await served(restarted, port);
    await vi.waitFor(() => expect(reset).toHaveBeenCalledWith({ channel: "feed" }), {
      timeout: 5000,
    });
    await broadcast(restarted, "feed", 100, 1);
    await vi.waitFor(() => expect(seen).toEqual([0, 1, 2, 100]));
    typed.close();
  });
});

describe("history shared by instances over Redis Streams", () => {
  let redis: Broker;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.kill();
  });

  async function instance() {
    const { app, onError } = recoveryApp({
      relay: redisRelay({ url: redis.url, prefix: `t${Date.now()}:` }),
    });
    return { app, onError, server: await served(app) };
  }

  /** Two instances over one Redis, with one prefix. */
  async function pair() {
    const prefix = `p${Math.random().toString(36).slice(2)}:`;
    const make = async () => {
      const { app, onError } = recoveryApp({ relay: redisRelay({ url: redis.url, prefix }) });
      return { app, onError, server: await served(app) };
    };
    return [await make(), await make()] as const;
  }

  it("stamps once for every instance: both see the same offsets, in one order", async () => {
    const [a, b] = await pair();
    const onA = await client(a.server.url);
    const onB = await client(b.server.url);
    // Nothing broadcast yet: Redis keeps nothing, each is given an empty stream's position.
    expect(await onA.request({ type: "subscribe", channel: "feed" })).toMatchObject({
      offset: 0,
      epoch: expect.stringMatching(/^e-r-/),
    });
    expect(await onB.request({ type: "subscribe", channel: "feed" })).toMatchObject({
      offset: 0,
      epoch: expect.stringMatching(/^e-r-/),
    });
    // Both instances broadcast at once.
    await Promise.all([broadcast(a.app, "feed", 0, 50), broadcast(b.app, "feed", 1000, 50)]);
    const fromA = await dataFrames(onA, 100);
    const fromB = await dataFrames(onB, 100);
    expect(offsets(fromA)).toEqual(range(1, 100));
    expect(fromB).toEqual(fromA);
    expect(a.onError).not.toHaveBeenCalled();
  });

  it("recovers on the other instance: 100 missed broadcasts, in order, then live ones", async () => {
    const [a, b] = await pair();
    const onA = await client(a.server.url);
    const { epoch } = await onA.request({ type: "subscribe", channel: "feed" });
    await broadcast(a.app, "feed", 0, 5);
    const seen = await dataFrames(onA, 5);
    onA.ws.terminate();
    await broadcast(a.app, "feed", 5, 100);

    const onB = await client(b.server.url);
    const since = { offset: seen.at(-1)?.offset, epoch: seen.at(-1)?.epoch };
    expect(since.epoch).not.toBe(epoch);
    expect(await onB.request({ type: "subscribe", channel: "feed", since })).toEqual({
      type: "subscribed",
      channel: "feed",
      offset: 105,
      epoch: since.epoch,
      recovered: true,
    });
    const missed = await dataFrames(onB, 100);
    expect(seqs(missed)).toEqual(range(5, 104));
    expect(offsets(missed)).toEqual(range(6, 105));
    await broadcast(a.app, "feed", 105, 1);
    expect(offsets(await dataFrames(onB, 1))).toEqual([106]);
    await onB.expectNone();
  });

  it("loses nothing and sends nothing twice when the other instance keeps broadcasting during the recovery", async () => {
    const [a, b] = await pair();
    const onB = await client(b.server.url);
    const { epoch } = await onB.request({ type: "subscribe", channel: "feed" });
    onB.ws.terminate();
    await broadcast(a.app, "feed", 0, 50);
    let next = 50;
    let flowing = true;
    const flow = (async () => {
      while (flowing) {
        await a.app.channels.feed({ seq: next++ });
        // About a thousand a second: the history (1,000) holds what the recovery must read.
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const again = await client(b.server.url);
    expect(
      await again.request(
        { type: "subscribe", channel: "feed", since: { offset: 0, epoch } },
        5000,
      ),
    ).toMatchObject({
      recovered: true,
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    flowing = false;
    await flow;
    const frames = await dataFrames(again, next);
    expect(offsets(frames)).toEqual(range(1, next));
    await again.expectNone(300);
  });

  it("sends no broadcast twice in ten recoveries racing live broadcasts across instances", async () => {
    const [a, b] = await pair();
    const watcher = await client(b.server.url);
    await watcher.request({ type: "subscribe", channel: "feed" });
    let next = 0;
    let flowing = true;
    const flow = (async () => {
      while (flowing) {
        await a.app.channels.feed({ seq: next++ });
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    })();
    const last = async (c: WsClient) => (await c.take((frame) => frame.type === "data")) as Frame;
    let since = await last(watcher);
    for (let round = 0; round < 10; round++) {
      const back = await client(b.server.url);
      const answer = await back.request(
        { type: "subscribe", channel: "feed", since: { offset: since.offset, epoch: since.epoch } },
        5000,
      );
      expect(answer).toMatchObject({ recovered: true });
      // Every frame after the position, each once, recovered or live, for a while.
      const seen: number[] = [];
      const until = Date.now() + 100;
      while (Date.now() < until) seen.push((await last(back)).offset as number);
      expect(seen).toEqual(
        range((since.offset as number) + 1, (since.offset as number) + seen.length),
      );
      since = { offset: seen.at(-1), epoch: since.epoch };
      back.ws.terminate();
    }
    flowing = false;
    await flow;
  });

  it("resolves a broadcast made as its last subscriber here leaves at once, not after waiting for its copy", async () => {
    const { app, server } = await instance();
    for (let round = 0; round < 5; round++) {
      const c = await client(server.url);
      await c.request({ type: "subscribe", channel: "feed" });
      await broadcast(app, "feed", 0, 1);
      await c.next();
      c.ws.terminate();
      const started = Date.now();
      // Before: the copy came back after the subscriber left, and was waited for 5 s.
      await broadcast(app, "feed", 1, 3);
      expect(Date.now() - started).toBeLessThan(1000);
    }
  });

  it("gives a channel's kept broadcasts to ctx.app.history from Redis, on any instance", async () => {
    const [a, b] = await pair();
    expect(await b.app.history("feed")).toEqual([]);
    await broadcast(a.app, "feed", 0, 4);
    const kept = await b.app.history("feed", { last: 3 });
    expect(kept.map((entry) => [entry.data, entry.offset])).toEqual([
      [{ seq: 1 }, 2],
      [{ seq: 2 }, 3],
      [{ seq: 3 }, 4],
    ]);
    expect(new Set(kept.map((entry) => entry.epoch)).size).toBe(1);
  });

  it("trims by size and by ttl in Redis too", async () => {
    const { app, server } = await instance();
    const c = await client(server.url);
    const small = await c.request({ type: "subscribe", channel: "small" });
    const brief = await c.request({ type: "subscribe", channel: "brief" });
    c.ws.terminate();
    await broadcast(app, "small", 0, 6);
    await broadcast(app, "brief", 0, 2);
    const again = await client(server.url);
    const answer = await again.request({
      type: "subscribe",
      channel: "small",
      since: { offset: 0, epoch: small.epoch },
    });
    expect(answer).toMatchObject({
      recovered: false,
      offset: 6,
    });
    const closer = await client(server.url);
    expect(
      await closer.request({
        type: "subscribe",
        channel: "small",
        since: { offset: 1, epoch: answer.epoch },
      }),
    ).toMatchObject({
      recovered: true,
    });
    expect(offsets(await dataFrames(closer, 5))).toEqual([2, 3, 4, 5, 6]);
    await new Promise((resolve) => setTimeout(resolve, 400));
    const late = await client(server.url);
    expect(
      await late.request({
        type: "subscribe",
        channel: "brief",
        since: { offset: 0, epoch: brief.epoch },
      }),
    ).toMatchObject({
      recovered: false,
    });
  });

  it("the acting client gets its broadcast before its action completes, through Redis", async () => {
    const { server } = await instance();
    const c = await client(server.url);
    await c.request({ type: "subscribe", channel: "feed" });
    c.send({ type: "action", channel: "burst", data: { channel: "feed", count: 3 }, id: "b" });
    const frames = [await c.next(), await c.next(), await c.next(), await c.next()];
    expect(frames.map((frame) => frame.type)).toEqual(["data", "data", "data", "action"]);
    expect(offsets(frames.slice(0, 3))).toEqual([1, 2, 3]);
  });

  it("keeps broadcasting locally, unstamped, while Redis is down, and reports it", async () => {
    const { app, onError, server } = await instance();
    const c = await client(server.url);
    await c.request({ type: "subscribe", channel: "feed" });
    await redis.kill();
    try {
      await vi.waitFor(async () => {
        await app.channels.feed({ seq: 1 });
        expect(await c.next()).toEqual({ type: "data", channel: "feed", data: { seq: 1 } });
      });
      expect(onError).toHaveBeenCalled();
    } finally {
      redis = await startRedis();
    }
  });
});
