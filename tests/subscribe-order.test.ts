// A subscribe waits for the relay to join the channel; a broadcast made here meanwhile
// reaches the client after `subscribed`, never before it (a data frame for a channel the
// client has not been told it is subscribed to). What a stand-in holds meanwhile, for a
// join or a read of the history, is bounded by maxBufferedBytes: past it, 1013.
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { type BrokerLink, BrokerRelay, hubOf } from "../src/adapter.ts";
import type { Recovery, SharedHistoryStore } from "../src/history/history.ts";
import { stampedFrame } from "../src/history/stamp.ts";
import { SocketAPI } from "../src/index.ts";
import { createTestClient } from "../src/testing.ts";
import { connect } from "./helpers/fake-client.ts";

/** A broker whose subscribes to "news" wait for the test to let them through. */
function slowJoin() {
  const joins: (() => void)[] = [];
  const link: BrokerLink = {
    name: "Slow at slow://broker",
    async connect() {},
    subscribe: async (channels) => {
      if (channels.includes("news")) await new Promise<void>((resolve) => joins.push(resolve));
    },
    async unsubscribe() {},
    async publish() {},
    async close() {},
  };
  return { link, joins };
}

function newsApp(link: BrokerLink, maxBufferedBytes?: number) {
  return new SocketAPI({
    relay: new BrokerRelay(link, { heartbeat: false }),
    ...(maxBufferedBytes !== undefined && { maxBufferedBytes }),
  }).channel(
    "news",
    { params: v.object({ n: v.optional(v.number(), 0), pad: v.optional(v.string()) }) },
    ({ n, pad }) => ({ n, ...(pad !== undefined && { pad }) }),
  );
}

describe("a broadcast made while a subscribe joins the relay", () => {
  it("reaches the client after subscribed, then the client hears the channel itself", async () => {
    const { link, joins } = slowJoin();
    const app = newsApp(link);
    const client = await createTestClient(app);
    client.send({ type: "subscribe", channel: "news", id: 1 });
    await expect.poll(() => joins.length).toBe(1);
    await app.channels.news({ n: 1 });
    await client.expectNone();
    joins[0]?.();
    expect(await client.next()).toEqual({ type: "subscribed", channel: "news", id: 1 });
    expect(await client.next()).toEqual({ type: "data", channel: "news", data: { n: 1 } });
    // Handed over: the connection gets the next one itself, once.
    await app.channels.news({ n: 2 });
    expect(await client.next()).toEqual({ type: "data", channel: "news", data: { n: 2 } });
    await client.expectNone();
    expect(app.subscriberCount("news")).toBe(1);
  });

  it("leaves nothing behind when the client goes while it joins", async () => {
    const { link, joins } = slowJoin();
    const app = newsApp(link);
    const client = await createTestClient(app);
    client.send({ type: "subscribe", channel: "news", id: 1 });
    await expect.poll(() => joins.length).toBe(1);
    await app.channels.news({ n: 1 });
    await client.close();
    joins[0]?.();
    await expect.poll(() => app.subscriberCount("news")).toBe(0);
  });

  it("holds at most maxBufferedBytes meanwhile: past it the client is dropped as a slow one", async () => {
    const { link, joins } = slowJoin();
    const app = newsApp(link, 1000);
    const client = await connect(app);
    client.send({ type: "subscribe", channel: "news", id: 1 });
    await expect.poll(() => joins.length).toBe(1);
    await app.channels.news({ n: 1, pad: "x".repeat(600) });
    expect(client.socket.closedWith).toBeUndefined();
    await app.channels.news({ n: 2, pad: "x".repeat(600) });
    expect(client.socket.closedWith).toEqual({ code: 1013, reason: "Slow consumer" });
    joins[0]?.();
    await expect.poll(() => app.subscriberCount("news")).toBe(0);
  });
});

describe("a broadcast heard while a subscribe with history reads the stream", () => {
  it("is held within maxBufferedBytes: past it the client is dropped as a slow one", async () => {
    const reads: ((recovery: Recovery) => void)[] = [];
    const history: SharedHistoryStore = {
      shared: true,
      publish: async () => 1,
      recover: () => new Promise<Recovery>((resolve) => reads.push(resolve)),
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
    const app = new SocketAPI({
      relay: new BrokerRelay(link, { heartbeat: false }),
      maxBufferedBytes: 1000,
    }).channel(
      "feed",
      { params: v.object({ pad: v.optional(v.string(), "") }), history: { size: 10, ttl: 60_000 } },
      ({ pad }) => ({ pad }),
    );
    const client = await connect(app);
    client.send({ type: "subscribe", channel: "feed", id: 1 });
    await expect.poll(() => reads.length).toBe(1);
    // Copies from another instance, as the relay hands them over, while the read waits.
    const copy = (offset: number) =>
      stampedFrame(
        JSON.stringify({ type: "data", channel: "feed", data: { pad: "x".repeat(600) } }),
        offset,
        "e",
      );
    hubOf(app).receive("feed", copy(1));
    expect(client.socket.closedWith).toBeUndefined();
    hubOf(app).receive("feed", copy(2));
    expect(client.socket.closedWith).toEqual({ code: 1013, reason: "Slow consumer" });
    reads[0]?.({ position: { offset: 2, epoch: "e" }, recovered: undefined, frames: [] });
    await expect.poll(() => app.subscriberCount("feed")).toBe(0);
  });
});
