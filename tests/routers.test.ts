// Routers: grouped declarations mounted into an app, with an optional name prefix.
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { Router, SocketAPI } from "../src/index.ts";
import { connect } from "./helpers/fake-client.ts";

describe("routers", () => {
  it("serves a router's action and channel in the app", async () => {
    const router = new Router()
      .channel(
        "news",
        { params: v.object({ text: v.optional(v.string(), "") }) },
        ({ text }) => text,
      )
      .action("post", { input: v.object({ text: v.string() }) }, async ({ text }, ctx) => {
        await ctx.channels.news({ text });
        return "posted";
      });
    const app = new SocketAPI().include(router);
    const reader = await connect(app);
    reader.send({ type: "subscribe", channel: "news" });
    expect(await reader.next()).toEqual({ type: "subscribed", channel: "news" });
    const writer = await connect(app);
    expect(
      (await writer.request({ type: "action", channel: "post", data: { text: "hi" } })).data,
    ).toBe("posted");
    expect(await reader.next()).toEqual({ type: "data", channel: "news", data: "hi" });
  });

  it("puts include's prefix before the router's own, at every level, also for later declarations", async () => {
    const chat = new Router<{ user: string }>().action("post", () => "posted");
    const v1 = new Router<{ user: string }, "v1/">({ prefix: "v1/" }).include(chat, {
      prefix: "chat/",
    });
    const app = new SocketAPI<{ user: string }>().include(v1, { prefix: "api/" });
    chat.action("edit", () => "edited");
    const client = await connect(app);
    expect((await client.request({ type: "action", channel: "api/v1/chat/post" })).data).toBe(
      "posted",
    );
    expect((await client.request({ type: "action", channel: "api/v1/chat/edit" })).data).toBe(
      "edited",
    );
    expect((await client.request({ type: "action", channel: "post" })).code).toBe("NOT_FOUND");
  });

  it("puts the router's prefix before its names, and the handles broadcast under the full name", async () => {
    const admin = new Router({ prefix: "admin." })
      .channel("stats", () => ({ users: 3 }))
      .action("refresh", async (_, ctx) => ctx.channels.stats());
    const app = new SocketAPI().include(admin);
    const client = await connect(app);
    client.send({ type: "subscribe", channel: "admin.stats" });
    expect(await client.next()).toEqual({ type: "subscribed", channel: "admin.stats" });
    client.send({ type: "action", channel: "refresh" });
    expect((await client.next()).message).toBe("Action 'refresh' not found.");
    client.send({ type: "action", channel: "admin.refresh" });
    expect(await client.next()).toEqual({
      type: "data",
      channel: "admin.stats",
      data: { users: 3 },
    });
    expect(await client.next()).toMatchObject({
      channel: "admin.refresh",
      status: "completed",
      data: 1,
    });
    expect(await admin.channels.stats()).toBe(1);
    expect(await app.channels["admin.stats"]()).toBe(1);
    expect((await client.next()).channel).toBe("admin.stats");
  });

  it("prefixes parameterized channels and nested routers", async () => {
    const rooms = new Router({ prefix: "rooms/" }).channel(
      "{room}",
      { params: v.object({ room: v.string() }) },
      ({ room }) => room,
    );
    const chat = new Router({ prefix: "chat/" }).include(rooms);
    const app = new SocketAPI().include(chat);
    const client = await connect(app);
    client.send({ type: "subscribe", channel: "chat/rooms/9" });
    expect(await client.next()).toEqual({ type: "subscribed", channel: "chat/rooms/9" });
    await rooms.channels["{room}"]({ room: "9" });
    expect(await client.next()).toEqual({ type: "data", channel: "chat/rooms/9", data: "9" });
  });

  it("serves declarations a router gets after it was included", async () => {
    const router = new Router({ prefix: "late." });
    const app = new SocketAPI().include(router);
    router.action("ping", () => "pong");
    const client = await connect(app);
    expect((await client.request({ type: "action", channel: "late.ping" })).data).toBe("pong");
  });

  it("broadcasts to every app that includes the router", async () => {
    const shared = new Router().channel("beat", () => "beat");
    const first = new SocketAPI().include(shared);
    const second = new SocketAPI().include(shared);
    const a = await connect(first);
    const b = await connect(second);
    for (const client of [a, b]) {
      client.send({ type: "subscribe", channel: "beat" });
      await client.next();
    }
    expect(await shared.channels.beat()).toBe(2);
    expect((await a.next()).data).toBe("beat");
    expect((await b.next()).data).toBe("beat");
  });

  it("refuses a broadcast on a router that no app includes", async () => {
    const lonely = new Router().channel("void", () => 1);
    await expect(lonely.channels.void()).rejects.toThrow("is not served by any app");
  });

  it("refuses a name that collides with one already served", () => {
    const app = new SocketAPI().action("x.ping", () => 1);
    expect(() => app.include(new Router({ prefix: "x." }).action("ping", () => 2))).toThrow(
      "Action 'x.ping' is declared twice.",
    );
  });
});
