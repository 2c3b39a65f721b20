// docs/security.md says the broker must be private to the app and gives a Redis ACL user
// that may touch only the app's prefix: the relay runs everything under it (broadcasts,
// history, recovery, presence, targeting, counting), and the user can touch nothing else.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import * as v from "valibot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NodeServer, serve } from "../adapters/node.ts";
import { redisRelay } from "../relays/redis.ts";
import { SocketAPI } from "../src/index.ts";
import { type Broker, startRedis } from "./helpers/brokers.ts";
import { root } from "./helpers/server-process.ts";
import { openClient, type WsClient } from "./helpers/ws-client.ts";

/** The ACL SETUSER line of docs/security.md. */
function documentedAcl(): string[] {
  const text = readFileSync(join(root, "docs", "security.md"), "utf8");
  const line = text.split("\n").find((l) => l.trim().startsWith("ACL SETUSER"));
  if (!line) throw new Error("docs/security.md has no ACL SETUSER line");
  return line.trim().split(/\s+/).slice(1);
}

describe("the Redis ACL user of docs/security.md", () => {
  let redis: Broker;
  let admin: Redis;
  const servers: NodeServer[] = [];
  const sockets: WsClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
    await admin.call("ACL", ...documentedAcl());
  });
  afterAll(async () => {
    for (const socket of sockets) socket.ws.terminate();
    await Promise.all(servers.map((server) => server.close()));
    admin?.disconnect();
    await redis?.kill();
  });

  it("runs everything the relay does, and may touch nothing outside its prefix", async () => {
    const [, user, , password] = documentedAcl();
    expect(user).toBe("chat");
    const url = `redis://chat:${(password as string).slice(1)}@127.0.0.1:${redis.port}`;
    const errors: unknown[] = [];
    const instance = async () => {
      const app = new SocketAPI<{ user: string }>({
        relay: redisRelay({ url, prefix: "chat:" }),
        onConnect: (request) => ({ user: new URL(request.url).searchParams.get("user") ?? "x" }),
        userId: (connection) => connection.state.user,
        onError: (error) => errors.push(error),
      })
        .channel(
          "rooms/{room}",
          {
            params: v.object({ room: v.string(), text: v.optional(v.string(), "") }),
            history: { size: 10, ttl: 60_000 },
            presence: (ctx) => ctx.connection.state.user,
          },
          ({ text }) => ({ text }),
        )
        .action("say", { input: v.object({ text: v.string() }) }, async ({ text }, ctx) => {
          await ctx.channels["rooms/{room}"].toUser("bob")({ room: "1", text: `dm ${text}` });
          await ctx.channels["rooms/{room}"]({ room: "1", text });
          return ctx.app.countSubscribers("rooms/1");
        });
      const server = await serve(app, { port: 0, host: "127.0.0.1" });
      servers.push(server);
      return server.url;
    };
    const [a, b] = [await instance(), await instance()];
    const bob = await openClient(`${b}?user=bob`);
    const ada = await openClient(`${a}?user=ada`);
    sockets.push(bob, ada);
    const first = await bob.request({ type: "subscribe", channel: "rooms/1", presence: true });
    expect(first).toMatchObject({ type: "subscribed", offset: 0, count: 1 });
    await ada.request({ type: "subscribe", channel: "rooms/1" });
    expect(await bob.next()).toMatchObject({ type: "join", user: "ada" });
    const said = await ada.request({ type: "action", channel: "say", data: { text: "hi" }, id: 1 });
    expect(said).toMatchObject({ type: "data", data: { text: "hi" }, offset: 1 });
    expect(await ada.next()).toMatchObject({ type: "action", data: 2 });
    expect(await bob.next()).toMatchObject({ type: "data", data: { text: "dm hi" } });
    const broadcast = await bob.next();
    expect(broadcast).toMatchObject({ data: { text: "hi" }, offset: 1 });
    // A recovery reads the stream back.
    const back = await openClient(`${b}?user=carl`);
    sockets.push(back);
    expect(
      await back.request({
        type: "subscribe",
        channel: "rooms/1",
        since: { offset: 0, epoch: first.epoch },
      }),
    ).toMatchObject({ recovered: true, offset: 1 });
    expect(await back.next()).toMatchObject({ data: { text: "hi" }, offset: 1 });
    expect(errors).toEqual([]);

    // Nothing outside the prefix.
    const confined = new Redis(url);
    try {
      await expect(confined.get("other:key")).rejects.toThrow(/NOPERM/);
      await expect(confined.publish("other:rooms/1", "x")).rejects.toThrow(/NOPERM/);
      await expect(confined.flushall()).rejects.toThrow(/NOPERM/);
    } finally {
      confined.disconnect();
    }
  });
});
