// Presence in one process over real sockets: who is here, join and leave, one member per
// user across tabs, leave on unsubscribe, close and a dropped peer; bounded info and lists.
import * as v from "valibot";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { type NodeServer, serve } from "../adapters/node.ts";
import { redisRelay } from "../relays/redis.ts";
import { hubOf } from "../src/adapter.ts";
import { createClient, type Member } from "../src/client/index.ts";
import { SocketAPI } from "../src/index.ts";
import { createTestClient } from "../src/testing.ts";
import { type Broker, startRedis } from "./helpers/brokers.ts";
import { type ServerProcess, startServer } from "./helpers/server-process.ts";
import { openClient, type WsClient } from "./helpers/ws-client.ts";

function presenceApp() {
  const onError = vi.fn();
  const app = new SocketAPI<{ user: string; name: string }>({
    onConnect: (request) => {
      const query = new URL(request.url).searchParams;
      const user = query.get("user") ?? "guest";
      return { user, name: query.get("name") ?? user.toUpperCase() };
    },
    userId: (connection) => connection.state.user,
    onError,
  })
    .channel(
      "room",
      {
        params: v.object({ text: v.optional(v.string(), "") }),
        presence: (ctx) => ({ name: ctx.connection.state.name }),
      },
      ({ text }) => ({ text }),
    )
    .channel(
      "big",
      { presence: (ctx) => ({ blob: "x".repeat(ctx.connection.state.name.length * 100) }) },
      () => null,
    )
    .channel("plain", () => null);
  return { app, onError };
}

const servers: NodeServer[] = [];
const sockets: WsClient[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.ws.terminate();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function served() {
  const { app, onError } = presenceApp();
  const server = await serve(app, { port: 0, host: "127.0.0.1" });
  servers.push(server);
  return { app, onError, url: server.url };
}

async function member(url: string, user: string, name?: string): Promise<WsClient> {
  const client = await openClient(`${url}?user=${user}${name ? `&name=${name}` : ""}`);
  sockets.push(client);
  return client;
}

const join = (user: string, name: string) => ({
  type: "join",
  channel: "room",
  user,
  info: { name },
});
const leave = (user: string) => ({ type: "leave", channel: "room", user });

describe("presence in one process", () => {
  it("lists the members in subscribed and tells the others of a join", async () => {
    const { url } = await served();
    const ada = await member(url, "ada", "Ada");
    expect(
      await ada.request({ type: "subscribe", channel: "room", presence: true, id: 1 }),
    ).toEqual({
      type: "subscribed",
      channel: "room",
      members: [{ user: "ada", info: { name: "Ada" } }],
      count: 1,
      id: 1,
    });
    const bob = await member(url, "bob", "Bob");
    expect(await bob.request({ type: "subscribe", channel: "room", presence: true })).toEqual({
      type: "subscribed",
      channel: "room",
      members: [
        { user: "ada", info: { name: "Ada" } },
        { user: "bob", info: { name: "Bob" } },
      ],
      count: 2,
    });
    expect(await ada.next()).toEqual(join("bob", "Bob"));
    await bob.expectNone();
  });

  it("counts a user on several tabs once: joins with the first, leaves with the last", async () => {
    const { app, url } = await served();
    const watcher = await member(url, "watcher");
    await watcher.request({ type: "subscribe", channel: "room", presence: true });
    const tabs = [await member(url, "ada", "Ada"), await member(url, "ada", "Ada")];
    for (const tab of tabs) await tab.request({ type: "subscribe", channel: "room" });
    expect(await watcher.next()).toEqual(join("ada", "Ada"));
    await watcher.expectNone();
    expect(await app.presenceCount("room")).toEqual({ members: 2, connections: 3 });
    expect(await app.presence("room")).toEqual([
      { user: "watcher", info: { name: "WATCHER" } },
      { user: "ada", info: { name: "Ada" } },
    ]);
    await (tabs[0] as WsClient).close();
    await watcher.expectNone(200);
    await (tabs[1] as WsClient).close();
    expect(await watcher.next()).toEqual(leave("ada"));
    expect((await app.presence("room")).map((m) => m.user)).toEqual(["watcher"]);
  });

  it("tells a leave on unsubscribe, and on a peer that dropped without a close", async () => {
    const { url } = await served();
    const watcher = await member(url, "watcher");
    await watcher.request({ type: "subscribe", channel: "room", presence: true });
    const bob = await member(url, "bob", "Bob");
    await bob.request({ type: "subscribe", channel: "room" });
    expect(await watcher.next()).toEqual(join("bob", "Bob"));
    await bob.request({ type: "unsubscribe", channel: "room" });
    expect(await watcher.next()).toEqual(leave("bob"));
    const cy = await member(url, "cy", "Cy");
    await cy.request({ type: "subscribe", channel: "room" });
    expect(await watcher.next()).toEqual(join("cy", "Cy"));
    cy.ws.terminate();
    expect(await watcher.next()).toEqual(leave("cy"));
  });

  it("changes nothing for a client that did not ask: no members, no join or leave frames", async () => {
    const { url } = await served();
    const quiet = await member(url, "quiet");
    expect(await quiet.request({ type: "subscribe", channel: "room", id: 3 })).toEqual({
      type: "subscribed",
      channel: "room",
      id: 3,
    });
    const bob = await member(url, "bob");
    await bob.request({ type: "subscribe", channel: "room" });
    await bob.close();
    await quiet.expectNone(200);
    // Asking on a channel without presence changes nothing either.
    expect(await quiet.request({ type: "subscribe", channel: "plain", presence: true })).toEqual({
      type: "subscribed",
      channel: "plain",
    });
  });

  it("refuses a subscribe whose presence info is over 1 KiB, and tells onError", async () => {
    const { url, onError } = await served();
    const small = await member(url, "a", "abc");
    expect(await small.request({ type: "subscribe", channel: "big" })).toMatchObject({
      type: "subscribed",
    });
    const large = await member(url, "b", "abcdefghijk");
    expect(await large.request({ type: "subscribe", channel: "big", id: 9 })).toEqual({
      type: "error",
      code: "INTERNAL_ERROR",
      message: "Internal server error.",
      channel: "big",
      id: 9,
    });
    expect(String(onError.mock.calls[0]?.[0])).toContain("presence info is over 1024 bytes");
  });

  it("lists at most 1,000 members, and says how many there are", async () => {
    const { app } = presenceApp();
    const clients = [];
    for (let i = 0; i < 1100; i++) {
      const client = await createTestClient(app, { url: `http://127.0.0.1/?user=u${i}` });
      await client.request({ type: "subscribe", channel: "room" });
      clients.push(client);
    }
    const asker = await createTestClient(app, { url: "http://127.0.0.1/?user=last" });
    const answer = await asker.request({ type: "subscribe", channel: "room", presence: true });
    expect(answer).toMatchObject({ type: "subscribed", count: 1101 });
    expect((answer as { members: unknown[] }).members).toHaveLength(1000);
  });
});

describe("what a member can make presence send and keep", () => {
  it("refuses a subscribe whose user id is over 256 characters, and tells onError", async () => {
    const { url, onError, app } = await served();
    const long = await member(url, "u".repeat(257));
    expect(await long.request({ type: "subscribe", channel: "room", id: 1 })).toEqual({
      type: "error",
      code: "INTERNAL_ERROR",
      message: "Internal server error.",
      channel: "room",
      id: 1,
    });
    expect(String(onError.mock.calls[0]?.[0])).toContain("over 256 characters");
    // Not subscribed, not a member; 256 is fine.
    expect(app.subscriberCount("room")).toBe(0);
    const fine = await member(url, "u".repeat(256));
    expect(await fine.request({ type: "subscribe", channel: "room" })).toMatchObject({
      type: "subscribed",
    });
  });

  it("lists at most 64 KiB of members, whatever their info, and says how many there are", async () => {
    const { app } = presenceApp();
    // Info of about 1 KiB each ("big": 100 bytes per character of the name).
    for (let i = 0; i < 200; i++) {
      const client = await createTestClient(app, {
        url: `http://127.0.0.1/?user=u${i}&name=abcdefghi${i % 10}`,
      });
      await client.request({ type: "subscribe", channel: "big" });
    }
    const asker = await createTestClient(app, { url: "http://127.0.0.1/?user=asker&name=a" });
    const answer = await asker.request({ type: "subscribe", channel: "big", presence: true });
    expect(answer).toMatchObject({ type: "subscribed", count: 201 });
    const listed = JSON.stringify(answer.members);
    expect(listed.length).toBeLessThanOrEqual(64 * 1024);
    expect((answer.members as unknown[]).length).toBeGreaterThan(50);
  });

  it("writes a listing once for the subscribes that ask for it, until a join or a leave", async () => {
    const { app } = presenceApp();
    for (let i = 0; i < 50; i++) {
      const client = await createTestClient(app, { url: `http://127.0.0.1/?user=u${i}` });
      await client.request({ type: "subscribe", channel: "room" });
    }
    const written = vi.spyOn(hubOf(app).presence.registry, "membersJson");
    const asker = await createTestClient(app, { url: "http://127.0.0.1/?user=asker" });
    for (let i = 0; i < 100; i++) {
      const answer = await asker.request({ type: "subscribe", channel: "room", presence: true });
      expect(answer).toMatchObject({ count: 51 });
    }
    // Before: the listing was written again for each of the 100.
    expect(written).toHaveBeenCalledTimes(1);
    const newcomer = await createTestClient(app, { url: "http://127.0.0.1/?user=newcomer" });
    await newcomer.request({ type: "subscribe", channel: "room" });
    expect(await asker.next()).toMatchObject({ type: "join", user: "newcomer" });
    expect(
      await asker.request({ type: "subscribe", channel: "room", presence: true }),
    ).toMatchObject({ count: 52 });
    expect(written).toHaveBeenCalledTimes(2);
  });

  it("tells a member toggling its presence once: one join, then one leave after the delay", async () => {
    const { url } = await served();
    const watchers = [await member(url, "w1"), await member(url, "w2")];
    for (const watcher of watchers) {
      await watcher.request({ type: "subscribe", channel: "room", presence: true });
    }
    await (watchers[0] as WsClient).next();
    const toggler = await member(url, "toggler", "T");
    for (let i = 0; i < 100; i++) {
      await toggler.request({ type: "subscribe", channel: "room" });
      await toggler.request({ type: "unsubscribe", channel: "room" });
    }
    // Before: 100 joins and 100 leaves for each watcher.
    for (const watcher of watchers) {
      expect(await watcher.next()).toEqual(join("toggler", "T"));
      expect(await watcher.next(3000)).toEqual(leave("toggler"));
      await watcher.expectNone(300);
    }
  });

  it("lets a member come back within the leave delay unheard (a reload), and tells its leave after it", async () => {
    const { app, url } = await served();
    const watcher = await member(url, "watcher");
    await watcher.request({ type: "subscribe", channel: "room", presence: true });
    const tab = await member(url, "ada", "Ada");
    await tab.request({ type: "subscribe", channel: "room" });
    expect(await watcher.next()).toEqual(join("ada", "Ada"));
    await tab.close();
    // Still listed while leaving.
    expect((await app.presence("room")).map((m) => m.user)).toEqual(["watcher", "ada"]);
    const reloaded = await member(url, "ada", "Ada");
    await reloaded.request({ type: "subscribe", channel: "room" });
    await watcher.expectNone(1300);
    expect(await app.presenceCount("room")).toEqual({ members: 2, connections: 2 });
    const left = Date.now();
    await reloaded.close();
    expect(await watcher.next(3000)).toEqual(leave("ada"));
    expect(Date.now() - left).toBeGreaterThanOrEqual(900);
    expect(await app.presenceCount("room")).toEqual({ members: 1, connections: 1 });
  });

  it("tells each leave at once with presenceLeaveDelay: 0", async () => {
    const app = new SocketAPI({ presenceLeaveDelay: 0 }).channel(
      "room",
      { presence: (ctx) => ctx.connection.id },
      () => null,
    );
    const watcher = await createTestClient(app);
    await watcher.request({ type: "subscribe", channel: "room", presence: true });
    const other = await createTestClient(app);
    await other.request({ type: "subscribe", channel: "room" });
    expect(await watcher.next()).toMatchObject({ type: "join" });
    await other.request({ type: "unsubscribe", channel: "room" });
    expect(await watcher.next(100)).toMatchObject({ type: "leave" });
  });
});

describe("a presence-only subscription in the typed client", () => {
  it("hears members, joins and leaves with no data listener, and unsubscribes", async () => {
    const { app, url } = await served();
    const typed = createClient<ReturnType<typeof presenceApp>["app"]>(`${url}?user=ada&name=Ada`, {
      WebSocket: WebSocket as never,
    });
    const seen: string[] = [];
    const stop = typed.subscribe("room", {
      members: (members) => seen.push(`members ${members.map((m) => m.user).join(",")}`),
      join: (m) => seen.push(`join ${m.user}`),
    });
    await stop.ready;
    const bob = await member(url, "bob", "Bob");
    await bob.request({ type: "subscribe", channel: "room" });
    // A broadcast finds no data listener, and nothing breaks.
    await app.channels.room({ text: "hi" });
    await vi.waitFor(() => expect(seen).toEqual(["members ada", "join bob"]));
    await stop();
    expect(app.subscriberCount("room")).toBe(1);
    typed.close();
  });
});

describe("presence from a handler", () => {
  it("is ctx.app.presence and ctx.app.presenceCount, in one declaration step", async () => {
    const app = new SocketAPI<{ user: string }>({
      onConnect: (request) => ({ user: new URL(request.url).searchParams.get("user") ?? "x" }),
      userId: (connection) => connection.state.user,
    })
      .channel("lobby", { presence: (ctx) => ({ name: ctx.connection.state.user }) }, () => null)
      .action("who", async (_, ctx) => ({
        members: await ctx.app.presence("lobby"),
        count: await ctx.app.presenceCount("lobby"),
      }));
    const ada = await createTestClient(app, { url: "http://127.0.0.1/?user=ada" });
    await ada.request({ type: "subscribe", channel: "lobby" });
    const bob = await createTestClient(app, { url: "http://127.0.0.1/?user=bob" });
    expect((await bob.request({ type: "action", channel: "who" })).data).toEqual({
      members: [{ user: "ada", info: { name: "ada" } }],
      count: { members: 1, connections: 1 },
    });
  });
});

describe("presence in the typed client", () => {
  it("gives members, joins and leaves, typed from the channel's presence", async () => {
    const { url } = await served();
    const typed = createClient<ReturnType<typeof presenceApp>["app"]>(`${url}?user=ada&name=Ada`, {
      WebSocket: WebSocket as never,
    });
    const seen: string[] = [];
    let listed: Member<{ name: string }>[] = [];
    const stop = typed.subscribe("room", {
      data: () => {},
      members: (members, count) => {
        listed = members;
        seen.push(`members ${count}`);
      },
      join: (m) => seen.push(`join ${m.user} ${m.info.name}`),
      leave: (m) => seen.push(`leave ${m.user}`),
    });
    await stop.ready;
    expect(listed).toEqual([{ user: "ada", info: { name: "Ada" } }]);
    const bob = await member(url, "bob", "Bob");
    await bob.request({ type: "subscribe", channel: "room" });
    await bob.close();
    // The leave comes after the leave delay (1 s by default).
    await vi.waitFor(() => expect(seen).toEqual(["members 1", "join bob Bob", "leave bob"]), {
      timeout: 3000,
    });
    typed.close();
  });
});

describe("presence across instances over Redis", () => {
  let redis: Broker;
  const instances: ServerProcess[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.kill();
  });
  afterEach(async () => {
    await Promise.all(instances.splice(0).map((instance) => instance.stop()));
  });

  /** An instance of tests/servers/scaling-app.ts over the test's Redis, heartbeats every 200 ms. */
  async function instance(name: string): Promise<ServerProcess> {
    const started = await startServer(
      ["node", "adapters/node-cli.js", "tests/servers/scaling-app.ts", "--port", "{port}"],
      { env: { INSTANCE: name, RELAY_URL: redis.url, PRESENCE_HEARTBEAT_MS: "200" } },
    );
    instances.push(started);
    return started;
  }

  const lobby = (user: string, instance: string) => ({ user, info: { instance, user } });

  it("counts members across instances, one per user, and tells joins and leaves everywhere", async () => {
    const [a, b] = [await instance("a"), await instance("b")];
    const ada = await member(a.url, "ada");
    await ada.request({ type: "subscribe", channel: "lobby" });
    const watcher = await member(b.url, "watcher");
    const answer = await watcher.request({ type: "subscribe", channel: "lobby", presence: true });
    expect(answer).toMatchObject({ type: "subscribed", count: 2 });
    expect(answer.members).toEqual(
      expect.arrayContaining([lobby("ada", "a"), lobby("watcher", "b")]),
    );
    const bob = await member(a.url, "bob");
    await bob.request({ type: "subscribe", channel: "lobby" });
    expect(await watcher.next()).toEqual({
      type: "join",
      channel: "lobby",
      user: "bob",
      info: { instance: "a", user: "bob" },
    });
    // Ada on a second tab, on the other instance: still one member.
    const adaAgain = await member(b.url, "ada");
    await adaAgain.request({ type: "subscribe", channel: "lobby" });
    const count = await bob.request({ type: "action", channel: "lobby_count" });
    expect(count.data).toEqual({ members: 3, connections: 4 });
    await ada.close();
    await watcher.expectNone(300);
    await adaAgain.close();
    expect(await watcher.next()).toEqual({ type: "leave", channel: "lobby", user: "ada" });
  });

  it("lists at most 64 KiB from Redis, and tells a member toggling on another instance once", async () => {
    const prefix = `bounded${Date.now()}:`;
    const make = async () => {
      const { app } = presenceApp();
      const relayed = new SocketAPI<{ user: string; name: string }>({
        relay: redisRelay({ url: redis.url, prefix }),
        onConnect: (request) => {
          const query = new URL(request.url).searchParams;
          return { user: query.get("user") ?? "guest", name: query.get("name") ?? "x" };
        },
        userId: (connection) => connection.state.user,
        onError: () => {},
      }).include(app);
      const server = await serve(relayed, { port: 0, host: "127.0.0.1" });
      servers.push(server);
      return server.url;
    };
    const [a, b] = [await make(), await make()];
    for (let i = 0; i < 120; i++) {
      const big = await member(a, `u${i}`, `abcdefghi${i % 10}`);
      await big.request({ type: "subscribe", channel: "big" });
    }
    const watcher = await member(b, "watcher", "w");
    const answer = await watcher.request({ type: "subscribe", channel: "big", presence: true });
    expect(answer).toMatchObject({ type: "subscribed", count: 121 });
    expect(JSON.stringify(answer.members).length).toBeLessThanOrEqual(64 * 1024);
    expect((answer.members as unknown[]).length).toBeGreaterThan(50);
    await watcher.request({ type: "subscribe", channel: "room", presence: true });
    const toggler = await member(a, "toggler", "T");
    for (let i = 0; i < 50; i++) {
      await toggler.request({ type: "subscribe", channel: "room" });
      await toggler.request({ type: "unsubscribe", channel: "room" });
    }
    expect(await watcher.next()).toEqual(join("toggler", "T"));
    expect(await watcher.next(3000)).toEqual(leave("toggler"));
    await watcher.expectNone(300);
  });

  it("counts out the members of an instance that died, within four heartbeats", async () => {
    const [a, b] = [await instance("a"), await instance("b")];
    const watcher = await member(b.url, "watcher");
    await watcher.request({ type: "subscribe", channel: "lobby", presence: true });
    const doomed = await member(a.url, "doomed");
    await doomed.request({ type: "subscribe", channel: "lobby" });
    expect(await watcher.next()).toMatchObject({ type: "join", user: "doomed" });
    const killedAt = Date.now();
    a.child.kill("SIGKILL");
    expect(await watcher.next(5000)).toEqual({ type: "leave", channel: "lobby", user: "doomed" });
    // The bound: silent for three heartbeats (600 ms), found at the next sweep (800 ms),
    // with room for a busy machine.
    expect(Date.now() - killedAt).toBeLessThan(3000);
  });
});
