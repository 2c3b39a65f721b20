// A broadcast with a shared history whose command the broker has not answered in time:
// whoever waited goes on, and the subscribers here get it once, never twice: without an
// offset once the broker failed it, or stamped by the broker when it took it late (its
// copy comes back through the relay), not both.
import * as v from "valibot";
import { describe, expect, it, vi } from "vitest";
import { type BrokerLink, BrokerRelay } from "../src/adapter.ts";
import type { SharedHistoryStore } from "../src/history/history.ts";
import { SocketAPI } from "../src/index.ts";
import { createTestClient } from "../src/testing.ts";

/** A broker whose history publishes wait for the test to answer them. */
function slowBroker() {
  const answers: { resolve: (offset: number) => void; reject: (error: Error) => void }[] = [];
  /** When set, publishes fail at once with it. */
  const failing: { now?: Error } = {};
  const history: SharedHistoryStore = {
    shared: true,
    publish: () =>
      failing.now
        ? Promise.reject(failing.now)
        : new Promise<number>((resolve, reject) => answers.push({ resolve, reject })),
    recover: async () => ({
      position: { offset: 0, epoch: "e" },
      recovered: undefined,
      frames: [],
    }),
  };
  const link: BrokerLink = {
    name: "Slow at slow://broker",
    async connect() {},
    async subscribe() {},
    async unsubscribe() {},
    async publish() {},
    async close() {},
    history,
  };
  return { link, answers, failing };
}

function feedApp(link: BrokerLink, errors: string[]) {
  return new SocketAPI({
    relay: new BrokerRelay(link, { commandTimeout: 30, heartbeat: false }),
    onError: (error) => errors.push(error instanceof Error ? error.message : String(error)),
  }).channel(
    "feed",
    { params: v.object({ n: v.optional(v.number(), 0) }), history: { size: 10, ttl: 60_000 } },
    ({ n }) => ({ n }),
  );
}

describe("a broadcast with history the broker answers late", () => {
  it("reaches the subscribers here once, without an offset, when the broker then fails it", async () => {
    const { link, answers } = slowBroker();
    const errors: string[] = [];
    const app = feedApp(link, errors);
    const client = await createTestClient(app);
    expect(await client.request({ type: "subscribe", channel: "feed" })).toMatchObject({
      type: "subscribed",
    });
    // Whoever waited goes on after the timeout; the subscriber has nothing yet.
    await app.channels.feed({ n: 1 });
    expect(errors.join("\n")).toContain("did not answer within 30 ms");
    await client.expectNone();
    answers[0]?.reject(new Error("Connection is closed."));
    expect(await client.next()).toEqual({ type: "data", channel: "feed", data: { n: 1 } });
    await client.expectNone();
  });

  it("is not given to the subscribers here without an offset when the broker takes it late", async () => {
    const { link, answers } = slowBroker();
    const app = feedApp(link, []);
    const client = await createTestClient(app);
    expect(await client.request({ type: "subscribe", channel: "feed" })).toMatchObject({
      type: "subscribed",
    });
    await app.channels.feed({ n: 1 });
    // Taken after all: its stamped copy is the broker's to carry, here too.
    answers[0]?.resolve(1);
    await client.expectNone();
  });

  it("keeps the order here: a broadcast that fails at once waits for an earlier one still in flight", async () => {
    const { link, answers, failing } = slowBroker();
    const app = feedApp(link, []);
    const client = await createTestClient(app);
    expect(await client.request({ type: "subscribe", channel: "feed" })).toMatchObject({
      type: "subscribed",
    });
    const first = app.channels.feed({ n: 1 });
    await vi.waitUntil(() => answers.length === 1);
    // The broker is gone now: the next one fails at once (say, past maxPendingBytes),
    // before the first has even timed out.
    failing.now = new Error("Connection is closed.");
    // Whoever waited for it goes on; the subscribers here get it after the first.
    expect(await app.channels.feed({ n: 2 })).toBe(0);
    await client.expectNone();
    await first;
    await client.expectNone();
    answers[0]?.reject(new Error("Connection is closed."));
    expect(await client.next()).toEqual({ type: "data", channel: "feed", data: { n: 1 } });
    expect(await client.next()).toEqual({ type: "data", channel: "feed", data: { n: 2 } });
    // Nothing in flight any more: a third is delivered at once.
    await app.channels.feed({ n: 3 });
    expect(await client.next()).toEqual({ type: "data", channel: "feed", data: { n: 3 } });
    await client.expectNone();
  });
});
