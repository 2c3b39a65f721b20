// A subscribe waits for the relay to join the channel; a broadcast made here meanwhile
// reaches the client after `subscribed`, never before it (a data frame for a channel the
// client has not been told it is subscribed to).
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { type BrokerLink, BrokerRelay } from "../src/adapter.ts";
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
