// Channels: subscribe, initial data, subscribe-time parameters, broadcasts, cleanup.
import * as v from "valibot";
import { describe, expect, it, vi } from "vitest";
import { hubOf } from "../src/adapter.ts";
import {
  ForbiddenError,
  InvalidChannelParamsError,
  SocketAPI,
  subscribeParam,
} from "../src/index.ts";
import { connect } from "./helpers/fake-client.ts";

function chatApp() {
  const handler = vi.fn(({ message }: { message: string }) => ({ message }));
  const app = new SocketAPI()
    .channel("chat", { params: v.object({ message: v.optional(v.string(), "Welcome") }) }, handler)
    .action(
      "send_message",
      { input: v.object({ message: v.string() }) },
      async ({ message }, ctx) => {
        await ctx.channels.chat({ message });
      },
    );
  return { app, handler };
}

async function subscribed(app: Parameters<typeof connect>[0], channel = "chat", data?: unknown) {
  const client = await connect(app);
  client.send({ type: "subscribe", channel, ...(data === undefined ? {} : { data }) });
  expect(await client.next()).toEqual({ type: "subscribed", channel });
  return client;
}

describe("subscribe", () => {
  it("runs the channel handler on subscribe even without initial data, and sends no data", async () => {
    const { app, handler } = chatApp();
    const client = await subscribed(app);
    expect(handler).toHaveBeenCalledOnce();
    expect(handler.mock.calls[0]?.[0]).toEqual({ message: "Welcome" });
    await client.expectNone();
  });

  it("sends initial data right after subscribed when the channel asks for it", async () => {
    const app = new SocketAPI().channel(
      "clock",
      { params: v.object({ tz: v.optional(v.string(), "UTC") }), initialData: true },
      ({ tz }) => ({ tz, time: 42 }),
    );
    const client = await connect(app);
    client.send({ type: "subscribe", channel: "clock", id: "s1" });
    expect(await client.next()).toEqual({ type: "subscribed", channel: "clock", id: "s1" });
    expect(await client.next()).toEqual({
      type: "data",
      channel: "clock",
      data: { tz: "UTC", time: 42 },
    });
  });

  it("sends null as initial data when the handler returns nothing", async () => {
    const app = new SocketAPI().channel("empty", { initialData: true }, () => undefined);
    const client = await subscribed(app, "empty");
    expect(await client.next()).toEqual({ type: "data", channel: "empty", data: null });
  });

  it("takes only subscribe-time parameters from the client; the others keep their defaults", async () => {
    const handler = vi.fn((params: { token: string; role: string }) => params);
    const app = new SocketAPI().channel(
      "feed",
      {
        params: v.object({
          token: subscribeParam(v.string()),
          role: v.optional(v.string(), "guest"),
        }),
        initialData: true,
      },
      handler,
    );
    const client = await connect(app);
    client.send({ type: "subscribe", channel: "feed", data: { token: "t1", role: "admin" } });
    expect(await client.next()).toMatchObject({ type: "subscribed" });
    expect(await client.next()).toEqual({
      type: "data",
      channel: "feed",
      data: { token: "t1", role: "guest" },
    });
  });

  it("refuses a subscriber when the handler throws: a token check", async () => {
    const app = new SocketAPI()
      .channel(
        "private",
        { params: v.object({ token: subscribeParam(v.string()) }), initialData: true },
        ({ token }) => {
          if (token !== "secret") throw new ForbiddenError("Invalid token.");
          return { ok: true };
        },
      )
      .action("announce", async (_, ctx) => ctx.channels.private({ token: "secret" }));
    const intruder = await connect(app);
    intruder.send({ type: "subscribe", channel: "private", data: { token: "guess" }, id: 1 });
    expect(await intruder.next()).toEqual({
      type: "error",
      code: "FORBIDDEN",
      message: "Invalid token.",
      channel: "private",
      id: 1,
    });
    const member = await connect(app);
    member.send({ type: "subscribe", channel: "private", data: { token: "secret" } });
    expect(await member.next()).toEqual({ type: "subscribed", channel: "private" });
    expect(await member.next()).toEqual({ type: "data", channel: "private", data: { ok: true } });

    const caller = await connect(app);
    expect((await caller.request({ type: "action", channel: "announce" })).data).toBe(1);
    expect(await member.next()).toEqual({ type: "data", channel: "private", data: { ok: true } });
    expect(intruder.session.subscriptions.size).toBe(0);
    await intruder.expectNone();
  });

  it("runs a subscribe guard with the validated parameters", async () => {
    const app = new SocketAPI().channel(
      "vip",
      {
        params: v.object({ level: subscribeParam(v.number()) }),
        guard: ({ level }) => level > 5,
      },
      () => ({}),
    );
    const client = await connect(app);
    client.send({ type: "subscribe", channel: "vip", data: { level: 1 } });
    expect(await client.next()).toMatchObject({ code: "FORBIDDEN", message: "Forbidden." });
    client.send({ type: "subscribe", channel: "vip", data: { level: 9 } });
    expect(await client.next()).toEqual({ type: "subscribed", channel: "vip" });
  });

  it("confirms a second subscribe and still delivers each broadcast once", async () => {
    const { app } = chatApp();
    const client = await subscribed(app);
    client.send({ type: "subscribe", channel: "chat" });
    expect(await client.next()).toEqual({ type: "subscribed", channel: "chat" });
    await app.channels.chat({ message: "once" });
    expect(await client.next()).toEqual({
      type: "data",
      channel: "chat",
      data: { message: "once" },
    });
    await client.expectNone();
  });
});

describe("broadcast", () => {
  it("reaches both subscribers and not a client that did not subscribe", async () => {
    const { app } = chatApp();
    const first = await subscribed(app);
    const second = await subscribed(app);
    const bystander = await connect(app);
    const sender = await connect(app);
    sender.send({ type: "action", channel: "send_message", data: { message: "Hello everyone!" } });
    expect(await sender.next()).toEqual({
      type: "action",
      channel: "send_message",
      status: "completed",
    });
    for (const client of [first, second]) {
      expect(await client.next()).toEqual({
        type: "data",
        channel: "chat",
        data: { message: "Hello everyone!" },
      });
    }
    await bystander.expectNone();
    await sender.expectNone();
  });

  it("serializes a broadcast once for every subscriber", async () => {
    const { app } = chatApp();
    const clients = await Promise.all([subscribed(app), subscribed(app), subscribed(app)]);
    const stringify = vi.spyOn(JSON, "stringify");
    await app.channels.chat({ message: "one" });
    const payloadCalls = stringify.mock.calls.filter(([value]) => {
      return typeof value === "object" && value !== null && "message" in value;
    });
    stringify.mockRestore();
    expect(payloadCalls).toHaveLength(1);
    for (const client of clients) expect((await client.next()).data).toEqual({ message: "one" });
  });

  it("reaches the acting subscriber before its action's completion", async () => {
    const { app } = chatApp();
    const client = await subscribed(app);
    client.send({ type: "action", channel: "send_message", data: { message: "self" } });
    expect(await client.next()).toEqual({
      type: "data",
      channel: "chat",
      data: { message: "self" },
    });
    expect(await client.next()).toMatchObject({ type: "action", status: "completed" });
  });

  it("works from outside any handler and resolves with the number of deliveries", async () => {
    const { app } = chatApp();
    const client = await subscribed(app);
    await subscribed(app);
    const delivered = await new Promise<number>((resolve) => {
      setTimeout(() => void app.channels.chat({ message: "tick" }).then(resolve), 1);
    });
    expect(delivered).toBe(2);
    expect(await client.next()).toEqual({
      type: "data",
      channel: "chat",
      data: { message: "tick" },
    });
  });

  it("uses the parameters' defaults when a handle is called without them", async () => {
    const { app } = chatApp();
    const client = await subscribed(app);
    await app.channels.chat();
    expect((await client.next()).data).toEqual({ message: "Welcome" });
  });

  it("throws InvalidChannelParamsError for parameters that fail the schema", async () => {
    const { app } = chatApp();
    const client = await subscribed(app);
    const failure = app.channels.chat({ message: 5 as unknown as string });
    await expect(failure).rejects.toBeInstanceOf(InvalidChannelParamsError);
    await expect(failure).rejects.toMatchObject({ issues: [{ path: ["message"] }] });
    await client.expectNone();
  });

  it("sends raw data with app.publish, without the handler", async () => {
    const { app, handler } = chatApp();
    const client = await subscribed(app);
    handler.mockClear();
    expect(app.publish("chat", { message: "raw" })).toBe(1);
    expect(handler).not.toHaveBeenCalled();
    expect((await client.next()).data).toEqual({ message: "raw" });
  });
});

describe("unsubscribe and cleanup", () => {
  it("stops broadcasts after unsubscribe, and confirms it", async () => {
    const { app } = chatApp();
    const leaving = await subscribed(app);
    const staying = await subscribed(app);
    leaving.send({ type: "unsubscribe", channel: "chat", id: 3 });
    expect(await leaving.next()).toEqual({ type: "unsubscribed", channel: "chat", id: 3 });
    await app.channels.chat({ message: "second" });
    expect((await staying.next()).data).toEqual({ message: "second" });
    await leaving.expectNone();
  });

  it("confirms unsubscribe from a channel never subscribed, or that does not exist", async () => {
    const client = await connect(chatApp().app);
    expect(await client.request({ type: "unsubscribe", channel: "chat" })).toEqual({
      type: "unsubscribed",
      channel: "chat",
    });
    expect(await client.request({ type: "unsubscribe", channel: "nowhere" })).toEqual({
      type: "unsubscribed",
      channel: "nowhere",
    });
  });

  it("removes a disconnected client from every channel", async () => {
    const app = new SocketAPI().channel("a", () => 1).channel("b", () => 2);
    const client = await connect(app);
    client.send({ type: "subscribe", channel: "a" });
    client.send({ type: "subscribe", channel: "b" });
    await client.next();
    await client.next();
    expect(hubOf(app).index.size()).toBe(2);
    client.disconnect();
    expect(hubOf(app).index.size()).toBe(0);
    expect(app.connections.size).toBe(0);
    expect(await app.channels.a()).toBe(0);
  });

  it("drops a subscriber whose send fails and still delivers to the others", async () => {
    const onError = vi.fn();
    const app = new SocketAPI({ onError })
      .channel(
        "news",
        { params: v.object({ text: v.optional(v.string(), "") }) },
        ({ text }) => text,
      )
      .channel("other", () => 0);
    const broken = await subscribed(app, "news");
    broken.send({ type: "subscribe", channel: "other" });
    await broken.next();
    const healthy = await subscribed(app, "news");
    broken.socket.failSends = true;
    expect(await app.channels.news({ text: "first" })).toBe(1);
    expect(await healthy.next()).toEqual({ type: "data", channel: "news", data: "first" });
    expect(broken.session.subscriptions.size).toBe(0);
    expect(hubOf(app).subscriberCount("other")).toBe(0);
    expect(broken.socket.closedWith?.code).toBe(1011);
    expect(await app.channels.news({ text: "second" })).toBe(1);
    expect((await healthy.next()).data).toBe("second");
  });

  it("cuts off a subscriber whose send buffer passes the limit with 1013", async () => {
    const app = new SocketAPI({ maxBufferedBytes: 1000 }).channel("c", () => "x");
    const slow = await subscribed(app, "c");
    const fast = await subscribed(app, "c");
    slow.socket.bufferedAmount = 5000; // it stopped reading
    expect(await app.channels.c()).toBe(2);
    expect(slow.socket.closedWith).toEqual({ code: 1013, reason: "Slow consumer" });
    expect(hubOf(app).subscriberCount("c")).toBe(1);
    expect(await app.channels.c()).toBe(1);
    expect((await fast.next()).data).toBe("x");
  });

  it("drops a subscriber whose socket closed without telling", async () => {
    const { app } = chatApp();
    const gone = await subscribed(app);
    const healthy = await subscribed(app);
    gone.socket.readyState = 3;
    expect(await app.channels.chat({ message: "x" })).toBe(1);
    expect(gone.session.subscriptions.size).toBe(0);
    expect((await healthy.next()).data).toEqual({ message: "x" });
  });

  it("does not subscribe a client that left while the channel handler ran", async () => {
    let release: () => void = () => {};
    const app = new SocketAPI().channel("slow", async () => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return 1;
    });
    const client = await connect(app);
    client.send({ type: "subscribe", channel: "slow" });
    await new Promise((resolve) => setTimeout(resolve, 5));
    client.disconnect();
    release();
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(hubOf(app).index.size()).toBe(0);
  });
});

describe("parameterized channel names", () => {
  function roomsApp() {
    return new SocketAPI().channel(
      "rooms/{room}",
      {
        params: v.object({
          room: v.pipe(v.string(), v.regex(/^\d+$/)),
          text: v.optional(v.string(), ""),
        }),
      },
      ({ room, text }) => ({ room, text }),
    );
  }

  it("delivers a broadcast for room 42 only to rooms/42's subscribers", async () => {
    const app = roomsApp();
    const in42 = await subscribed(app, "rooms/42");
    const in7 = await subscribed(app, "rooms/7");
    expect(await app.channels["rooms/{room}"]({ room: "42", text: "hi" })).toBe(1);
    expect(await in42.next()).toEqual({
      type: "data",
      channel: "rooms/42",
      data: { room: "42", text: "hi" },
    });
    await in7.expectNone();
  });

  it("validates the parameter taken from the name", async () => {
    const client = await connect(roomsApp());
    client.send({ type: "subscribe", channel: "rooms/lobby" });
    expect(await client.next()).toMatchObject({
      code: "INVALID_PARAMS",
      message: "Invalid parameters for channel 'rooms/lobby'",
      channel: "rooms/lobby",
      issues: [{ path: ["room"] }],
    });
  });

  it("does not match a name with more or fewer segments", async () => {
    const client = await connect(roomsApp());
    for (const name of ["rooms", "rooms/", "rooms/1/2", "room/1"]) {
      client.send({ type: "subscribe", channel: name });
      expect(await client.next()).toMatchObject({
        code: "NOT_FOUND",
        message: `Channel '${name}' not found.`,
      });
    }
  });

  it("lets the name win over a parameter of the same key in data", async () => {
    const app = new SocketAPI().channel(
      "users/{id}",
      { params: v.object({ id: subscribeParam(v.string()) }), initialData: true },
      ({ id }) => id,
    );
    const client = await connect(app);
    client.send({ type: "subscribe", channel: "users/5", data: { id: "6" } });
    await client.next();
    expect((await client.next()).data).toBe("5");
  });

  it("supports several parameters and numbers given to the handle", async () => {
    const app = new SocketAPI().channel(
      "orgs/{org}/rooms/{room}",
      { params: v.object({ org: v.string(), room: v.union([v.string(), v.number()]) }) },
      ({ org, room }) => `${org}:${room}`,
    );
    const client = await subscribed(app, "orgs/acme/rooms/3");
    await app.channels["orgs/{org}/rooms/{room}"]({ org: "acme", room: 3 });
    expect(await client.next()).toEqual({
      type: "data",
      channel: "orgs/acme/rooms/3",
      data: "acme:3",
    });
  });

  it("refuses a template whose parameters the schema does not declare", () => {
    expect(() =>
      new SocketAPI().channel("rooms/{room}", { params: v.object({}) }, () => 1),
    ).toThrow("Channel 'rooms/{room}': its params schema must be an object with 'room'.");
    expect(() => new SocketAPI().channel("rooms/x{room}", () => 1)).toThrow("whole segment");
  });
});
