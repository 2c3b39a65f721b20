// What every broker relay does the same way, over a link that plays the broker: interest
// kept and restored, broadcasts handed over within a bound, losses counted and reported
// once per outage, subscribes that never wait forever.
import { describe, expect, it, vi } from "vitest";
import {
  type BrokerLink,
  BrokerRelay,
  DEGRADED_MS,
  type LinkEvents,
  STALLED_MS,
} from "../src/adapter.ts";
import type { SharedHistoryStore } from "../src/history/history.ts";

/** A broker in the test's hands: it takes publishes when told to, and can go away. */
function fakeBroker() {
  let events: LinkEvents | undefined;
  const subscribed = new Set<string>();
  const waiting: (() => void)[] = [];
  const published: string[] = [];
  /** Publishes are taken at once unless stalled; subscribes are confirmed unless silent. */
  const state = { stalled: false, silent: false };
  const broker = {
    subscribed,
    /** What the relay subscribed to for its subscribers, without the census's two topics. */
    channels: () => [...subscribed].filter((channel) => !channel.startsWith("//census")).sort(),
    published,
    state,
    link: {
      name: "Fake at fake://broker",
      async connect(given: LinkEvents) {
        events = given;
      },
      subscribe(channels: readonly string[]) {
        for (const channel of channels) subscribed.add(channel);
        return state.silent ? new Promise<void>(() => {}) : Promise.resolve();
      },
      async unsubscribe(channel: string) {
        subscribed.delete(channel);
      },
      publish(channel: string, frame: string) {
        published.push(`${channel} ${frame}`);
        if (!state.stalled) return Promise.resolve();
        return new Promise<void>((resolve) => waiting.push(resolve));
      },
      async close() {},
    } satisfies BrokerLink,
    /** Takes every stalled publish. */
    drain() {
      state.stalled = false;
      for (const resolve of waiting.splice(0)) resolve();
    },
    down() {
      subscribed.clear();
      events?.down(new Error("connection reset"));
    },
    trouble(error: Error) {
      events?.trouble?.(error);
    },
    up() {
      events?.up();
    },
    deliver(channel: string, frame: string) {
      events?.message(channel, frame);
    },
  };
  return broker;
}

async function opened(broker: { link: BrokerLink }, options = {}) {
  const relay = new BrokerRelay(broker.link, options);
  const received: string[] = [];
  const reported: string[] = [];
  await relay.open(
    (channel, frame) => received.push(`${channel} ${frame}`),
    (error) => reported.push(error instanceof Error ? error.message : String(error)),
  );
  return { relay, received, reported };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("a broker relay's health", () => {
  it("is down while the broker is away, degraded while it stalls or after trouble, else ok", async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    try {
      const broker = fakeBroker();
      const { relay } = await opened(broker);
      expect(relay.health.status).toBe("ok");
      broker.state.stalled = true;
      relay.publish("a", "frame");
      vi.advanceTimersByTime(STALLED_MS - 1);
      expect(relay.health.status).toBe("ok");
      vi.advanceTimersByTime(2);
      expect(relay.health).toMatchObject({
        status: "degraded",
        since: 1_000_000 + STALLED_MS,
        reason: expect.stringContaining("has not answered for"),
      });
      broker.drain();
      await vi.advanceTimersByTimeAsync(0);
      expect(relay.health.status).toBe("ok");
      broker.trouble(new Error("node 10.0.0.3:6379 failed"));
      expect(relay.health).toMatchObject({
        status: "degraded",
        reason: "node 10.0.0.3:6379 failed",
      });
      vi.advanceTimersByTime(DEGRADED_MS);
      expect(relay.health.status).toBe("ok");
      broker.down();
      expect(relay.health).toMatchObject({ status: "down", since: Date.now() });
      broker.up();
      // Back, and subscribing again: degraded until the subscriptions are confirmed.
      expect(relay.health.status).toBe("degraded");
      await vi.advanceTimersByTimeAsync(0);
      expect(relay.health.status).toBe("ok");
      await relay.close();
      expect(relay.health.status).toBe("down");
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("a broker relay", () => {
  it("subscribes to what it joins, forgets what it leaves, and passes on what it receives", async () => {
    const broker = fakeBroker();
    const { relay, received } = await opened(broker);
    await relay.join("a");
    await relay.join("b");
    await relay.leave("a");
    expect(broker.channels()).toEqual(["b"]);
    // And the topics on which instances count subscribers: asked, and answered.
    expect([...broker.subscribed].sort()).toEqual([
      "//census",
      expect.stringMatching(/^\/\/census\/[0-9a-f-]{36}$/),
      "b",
    ]);
    broker.deliver("b", "frame");
    expect(received).toEqual(["b frame"]);
    expect(relay.stats).toEqual({
      published: 0,
      received: 1,
      lost: 0,
      disconnects: 0,
      pendingBytes: 0,
    });
  });

  it("keeps its interest through an outage and subscribes again to all of it, also what was joined meanwhile", async () => {
    const broker = fakeBroker();
    const { relay, reported } = await opened(broker);
    await relay.join("a");
    await relay.join("gone");
    broker.down();
    await relay.join("late");
    await relay.leave("gone");
    expect(broker.subscribed.size).toBe(0);
    broker.up();
    await tick();
    expect(broker.channels()).toEqual(["a", "late"]);
    expect(broker.subscribed.has("//census")).toBe(true);
    expect(relay.stats?.disconnects).toBe(1);
    expect(reported).toHaveLength(1);
    expect(reported[0]).toContain("Fake at fake://broker is unreachable");
  });

  it("answers another instance's count with its own, and adds up the answers to its own", async () => {
    const broker = fakeBroker();
    const relay = new BrokerRelay({ ...broker.link, listeners: async () => 3 });
    await relay.open(
      () => {},
      () => {},
      (channel) => (channel === "rooms/1" ? 4 : 0),
    );
    // Another instance asks: this one answers on the topic it gave.
    broker.deliver("//census", '{"id":9,"channel":"rooms/1","reply":"//census/other"}');
    expect(broker.published).toEqual(['//census/other {"id":9,"count":4}']);
    // Requests that are not well formed are not answered.
    for (const bad of ["nope", "[]", '{"id":"x"}', '{"id":1,"channel":"a","reply":"news"}']) {
      broker.deliver("//census", bad);
    }
    expect(broker.published).toHaveLength(1);
    // This one asks: the broker has three listeners, so two answers end the count.
    const counted = relay.countSubscribers("rooms/1");
    await tick();
    const request = JSON.parse((broker.published[1] as string).split(" ").slice(1).join(" "));
    expect(request).toMatchObject({ channel: "rooms/1" });
    broker.deliver(request.reply, JSON.stringify({ id: request.id, count: 2 }));
    broker.deliver(request.reply, JSON.stringify({ id: request.id + 1, count: 100 }));
    broker.deliver(request.reply, JSON.stringify({ id: request.id, count: 5 }));
    expect(await counted).toBe(7);
    // Census messages are not broadcasts.
    expect(relay.stats?.received).toBe(0);
  });

  it("gives up a count after a second without every answer, and refuses one while the broker is away", async () => {
    const broker = fakeBroker();
    const { relay } = await opened(broker);
    const started = Date.now();
    expect(await relay.countSubscribers("rooms/1")).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    broker.down();
    await expect(relay.countSubscribers("rooms/1")).rejects.toThrow(
      "Fake at fake://broker is unreachable: subscribers on other instances cannot be counted.",
    );
  });

  it("loses broadcasts during an outage without waiting, counts each and reports once", async () => {
    const broker = fakeBroker();
    const { relay, reported } = await opened(broker);
    broker.down();
    for (let i = 0; i < 100; i++) expect(relay.publish("a", `f${i}`)).toBeUndefined();
    expect(broker.published).toHaveLength(0);
    expect(relay.stats).toMatchObject({ published: 0, lost: 100 });
    expect(reported).toHaveLength(1);
    // Back: carried again, and a new outage is reported again.
    broker.up();
    relay.publish("a", "after");
    expect(broker.published).toEqual(["a after"]);
    broker.down();
    relay.publish("a", "lost again");
    expect(reported).toHaveLength(2);
  });

  it("holds at most maxPendingBytes for a broker that does not take them, and loses the rest", async () => {
    const broker = fakeBroker();
    const { relay, reported } = await opened(broker, { maxPendingBytes: 1000 });
    broker.state.stalled = true;
    const frame = "x".repeat(100);
    for (let i = 0; i < 25; i++) relay.publish("a", frame);
    // Ten fit in 1000 bytes; the other fifteen were not held.
    expect(broker.published).toHaveLength(10);
    expect(relay.stats).toMatchObject({ published: 10, lost: 15 });
    expect(reported).toHaveLength(1);
    expect(reported[0]).toContain("is not taking broadcasts as fast as they come");
    broker.drain();
    await tick();
    relay.publish("a", frame);
    expect(broker.published).toHaveLength(11);
  });

  it("counts a broadcast with history that is late as lost only when its command fails, not when it is taken late", async () => {
    const broker = fakeBroker();
    const answers: { resolve: (offset: number) => void; reject: (error: Error) => void }[] = [];
    const history: SharedHistoryStore = {
      shared: true,
      publish: () => new Promise<number>((resolve, reject) => answers.push({ resolve, reject })),
      recover: () => Promise.reject(new Error("not read here")),
    };
    const { relay, reported } = await opened(
      { ...broker, link: { ...broker.link, history } },
      { commandTimeout: 20 },
    );
    const store = relay.history as SharedHistoryStore;
    const options = { size: 10, ttl: 1000 };
    // Both wait past the timeout: whoever waited goes on, told, and neither is lost yet.
    const first = store.publish("a", "one", options);
    const second = store.publish("a", "two", options);
    await expect(first).rejects.toThrow("did not answer within 20 ms");
    await expect(second).rejects.toThrow("did not answer within 20 ms");
    expect(relay.stats.lost).toBe(0);
    expect(reported).toHaveLength(1);
    // The first is taken late (sent again to a new primary): it reached the others. The
    // second fails (its connection closed): lost, once.
    answers[0]?.resolve(1);
    answers[1]?.reject(new Error("Connection is closed."));
    await tick();
    expect(relay.stats.lost).toBe(1);
    expect(relay.stats.pendingBytes).toBe(0);
    // One that fails before the timeout counts once, too.
    const third = store.publish("a", "three", options);
    answers[2]?.reject(new Error("Connection is closed."));
    await expect(third).rejects.toThrow("Connection is closed.");
    expect(relay.stats.lost).toBe(2);
  });

  it("pings the broker: degraded while a ping waits, and connects again once one waited commandTimeout, told once", async () => {
    const broker = fakeBroker();
    let answering = true;
    const pings: ((value: undefined) => void)[] = [];
    let reconnects = 0;
    const link: BrokerLink = {
      ...broker.link,
      ping: () =>
        answering ? Promise.resolve() : new Promise<undefined>((resolve) => pings.push(resolve)),
      reconnect: () => {
        reconnects++;
      },
    };
    const { relay, reported } = await opened({ link }, { heartbeat: 20, commandTimeout: 1500 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(relay.health.status).toBe("ok");
    // Quiet, not deaf: the broker stops answering pings.
    answering = false;
    await vi.waitFor(() => expect(relay.health.status).toBe("degraded"), { timeout: 3000 });
    expect(relay.health.reason).toContain("has not answered for");
    expect(pings).toHaveLength(1);
    expect(reconnects).toBe(0);
    await vi.waitFor(() => expect(reconnects).toBe(1), { timeout: 3000 });
    expect(reported).toEqual([
      "Fake at fake://broker has not answered a ping for 1500 ms: connecting again " +
        "(broadcasts from other instances are not heard meanwhile)",
    ]);
    // Back: pings are answered again; the relay is ok once the trouble is past.
    answering = true;
    broker.down();
    broker.up();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(reconnects).toBe(1);
    await relay.close();
  });

  it("never pings with heartbeat: false", async () => {
    const broker = fakeBroker();
    let pinged = 0;
    const link: BrokerLink = {
      ...broker.link,
      ping: async () => {
        pinged++;
      },
    };
    const { relay } = await opened({ link }, { heartbeat: false });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(pinged).toBe(0);
    await relay.close();
  });

  it("does not keep a subscribe waiting forever for a broker that does not confirm it", async () => {
    const broker = fakeBroker();
    const { relay } = await opened(broker, { joinTimeout: 50 });
    broker.state.silent = true;
    const started = Date.now();
    await expect(relay.join("a")).rejects.toThrow("did not confirm the subscription");
    expect(Date.now() - started).toBeLessThan(1000);
    // The interest is kept: restored with the others when the broker comes back.
    broker.state.silent = false;
    broker.down();
    broker.up();
    await tick();
    expect(broker.channels()).toEqual(["a"]);
  });

  it("after close, neither publishes nor reports", async () => {
    const broker = fakeBroker();
    const { relay, reported } = await opened(broker);
    await relay.close();
    relay.publish("a", "late");
    broker.down();
    expect(broker.published).toHaveLength(0);
    expect(reported).toHaveLength(0);
  });
});
