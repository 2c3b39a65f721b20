// Targeted delivery across instances over a real Redis: everyone but one connection, one
// connection by id, every connection of one user, from handlers, from the app and from
// /_broadcast. (Each runtime on its own: the conformance suite.)
import * as v from "valibot";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type NodeServer, serve } from "../adapters/node.ts";
import { redisRelay } from "../relays/redis.ts";
import { SocketAPI } from "../src/index.ts";
import { type Broker, startRedis } from "./helpers/brokers.ts";
import { openClient, type WsClient } from "./helpers/ws-client.ts";

type Frame = Record<string, unknown>;

function targetingApp(redisUrl: string, prefix: string) {
  return new SocketAPI<{ user: string }>({
    relay: redisRelay({ url: redisUrl, prefix }),
    onConnect: (request) => ({ user: new URL(request.url).searchParams.get("user") ?? "anyone" }),
    userId: (connection) => connection.state.user,
  })
    .channel("chat", { params: v.object({ text: v.optional(v.string(), "") }) }, ({ text }) => ({
      text,
    }))
    .channel(
      "feed",
      {
        params: v.object({ text: v.optional(v.string(), "") }),
        history: { size: 10, ttl: 60_000 },
      },
      ({ text }) => ({ text }),
    )
    .action("my_id", (_, ctx) => ctx.connection.id)
    .action(
      "shout",
      { input: v.object({ channel: v.picklist(["chat", "feed"]), text: v.string() }) },
      ({ channel, text }, ctx) => ctx.channels[channel].except(ctx.connection)({ text }),
    );
}

let redis: Broker;
const servers: NodeServer[] = [];
const sockets: WsClient[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.kill();
});
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.ws.terminate();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

/** Two instances of the app over one Redis. */
async function pair() {
  const prefix = `t${Math.random().toString(36).slice(2)}:`;
  const apps = [targetingApp(redis.url, prefix), targetingApp(redis.url, prefix)] as const;
  for (const app of apps) servers.push(await serve(app, { port: 0, host: "127.0.0.1" }));
  return { apps, urls: servers.slice(-2).map((server) => server.url) };
}

async function subscribed(url: string, user: string, channel = "chat"): Promise<WsClient> {
  const client = await openClient(`${url}?user=${user}`);
  sockets.push(client);
  expect(await client.request({ type: "subscribe", channel })).toMatchObject({
    type: "subscribed",
  });
  return client;
}

const idOf = async (client: WsClient) =>
  (await client.request({ type: "action", channel: "my_id" })).data as string;

describe("targeted delivery across instances", () => {
  it("reaches everyone but the sender, on both instances", async () => {
    const { urls } = await pair();
    const sender = await subscribed(urls[0] as string, "ada");
    const others = [
      await subscribed(urls[0] as string, "bob"),
      await subscribed(urls[1] as string, "cy"),
    ];
    expect(
      await sender.request({
        type: "action",
        channel: "shout",
        data: { channel: "chat", text: "hi" },
      }),
    ).toMatchObject({ status: "completed" });
    for (const other of others) {
      expect(await other.next()).toEqual({ type: "data", channel: "chat", data: { text: "hi" } });
    }
    await sender.expectNone(200);
  });

  it("reaches one connection by id on the other instance, and nobody else", async () => {
    const { apps, urls } = await pair();
    const here = await subscribed(urls[0] as string, "ada");
    const there = await subscribed(urls[1] as string, "bob");
    const bystander = await subscribed(urls[1] as string, "cy");
    await apps[0].channels.chat.to(await idOf(there))({ text: "for bob" });
    expect(await there.next()).toEqual({
      type: "data",
      channel: "chat",
      data: { text: "for bob" },
    });
    await here.expectNone(200);
    await bystander.expectNone(0);
  });

  it("reaches every connection of one user on every instance", async () => {
    const { apps, urls } = await pair();
    const tabs = [
      await subscribed(urls[0] as string, "ada"),
      await subscribed(urls[1] as string, "ada"),
    ];
    const bob = await subscribed(urls[1] as string, "bob");
    // The count is this instance's, as docs/channels.md says: one tab here, one elsewhere.
    expect(await apps[1].channels.chat.toUser("ada")({ text: "all your tabs" })).toBe(1);
    for (const tab of tabs) {
      expect(await tab.next()).toEqual({
        type: "data",
        channel: "chat",
        data: { text: "all your tabs" },
      });
    }
    await bob.expectNone(200);
    // A user connected only to the other instance: reached there, counted 0 here.
    expect(await apps[0].channels.chat.toUser("bob")({ text: "elsewhere" })).toBe(0);
    expect(await bob.next()).toMatchObject({ data: { text: "elsewhere" } });
  });

  it("takes a target over /_broadcast", async () => {
    const { urls } = await pair();
    const ada = await subscribed(urls[0] as string, "ada");
    const bob = await subscribed(urls[1] as string, "bob");
    const post = (body: unknown) =>
      fetch((urls[0] as string).replace("ws", "http").replace(/\/$/, "/_broadcast"), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const response = await post({ channel: "chat", data: { text: "via http" }, toUser: "bob" });
    expect(response.status).toBe(200);
    expect(await bob.next()).toEqual({ type: "data", channel: "chat", data: { text: "via http" } });
    await ada.expectNone(200);
    const bad = await post({ channel: "chat", to: "a", toUser: "b" });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({
      error: "Give at most one of except, to and toUser, each a string.",
    });
  });

  it("keeps a broadcast for everyone but the sender in the shared history, stamped once", async () => {
    const { urls } = await pair();
    const sender = await subscribed(urls[0] as string, "ada", "feed");
    const there = await subscribed(urls[1] as string, "bob", "feed");
    const here = await subscribed(urls[0] as string, "cy", "feed");
    await sender.request({
      type: "action",
      channel: "shout",
      data: { channel: "feed", text: "one" },
    });
    const got = [(await there.next()) as Frame, (await here.next()) as Frame];
    expect(got.map((frame) => frame.offset)).toEqual([1, 1]);
    expect(got[0]).toEqual(got[1]);
    await sender.expectNone(200);
  });
});
