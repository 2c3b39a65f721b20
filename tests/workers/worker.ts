// The Worker the workerd tests run: a sharded app (one object per room from the URL), a
// channel per room, a channel across rooms, and routes that broadcast from the Worker.
import { AggregationTemporality, MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { Hono } from "hono";
import * as v from "valibot";
import { cloudflare } from "../../adapters/cloudflare.ts";
import { socketapi } from "../../adapters/hono.ts";
import { SocketAPI, subscribeParam } from "../../src/index.ts";

/** Reads the app's metrics on demand, inside workerd. */
class OnDemandReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}
export const metricsReader = new OnDemandReader();

export const app = new SocketAPI({
  telemetry: { meterProvider: new MeterProvider({ readers: [metricsReader] }) },
  onConnect: (request, credential) => {
    const url = new URL(request.url);
    if (url.searchParams.get("token") === "bad")
      return new Response("Unauthorized", { status: 401 });
    // A token `ttl:MS` in Sec-WebSocket-Protocol: the connection expires MS from now.
    if (credential.source === "protocol") {
      credential.expiresAt = Date.now() + Number(credential.token?.slice("ttl:".length));
    }
    return { user: url.searchParams.get("user") ?? "anonymous", visits: 0 };
  },
  onRefresh: (credential) => {
    credential.expiresAt = Date.now() + Number(credential.token.slice("ttl:".length));
  },
  userId: (connection) => connection.state.user,
})
  .channel("news", { params: v.object({ text: v.optional(v.string(), "") }) }, ({ text }) => ({
    text,
  }))
  .channel("alerts", { params: v.object({ text: v.optional(v.string(), "") }) }, ({ text }) => ({
    text,
  }))
  .channel("notices", { params: v.object({ text: v.optional(v.string(), "") }) }, ({ text }) => ({
    text,
  }))
  .channel(
    "rooms/{room}",
    { params: v.object({ room: v.string(), text: v.optional(v.string(), "") }) },
    ({ room, text }) => ({ room, text }),
  )
  .channel(
    "tagged",
    { params: v.object({ tag: subscribeParam(v.optional(v.string(), "")) }) },
    ({ tag }) => ({ tag }),
  )
  // With history, kept in each object's storage.
  .channel(
    "feed",
    { params: v.object({ n: v.optional(v.number(), 0) }), history: { size: 100, ttl: 60_000 } },
    ({ n }) => ({ n }),
  )
  .action("post", { input: v.object({ n: v.number() }) }, (input, ctx) => ctx.channels.feed(input))
  .action("recent", (_, ctx) => ctx.app.history("feed", { last: 2 }))
  // With history that expires fast, and one per topic.
  .channel(
    "brief",
    { params: v.object({ n: v.optional(v.number(), 0) }), history: { size: 10, ttl: 300 } },
    ({ n }) => ({ n }),
  )
  .action("post_brief", { input: v.object({ n: v.number() }) }, (input, ctx) =>
    ctx.channels.brief(input),
  )
  .channel(
    "logs/{topic}",
    {
      params: v.object({ topic: v.string(), line: v.optional(v.string(), "") }),
      history: { size: 100, ttl: 60_000, maxBytes: 4096 },
    },
    ({ line }) => ({ line }),
  )
  .action("log", { input: v.object({ topic: v.string(), line: v.string() }) }, (input, ctx) =>
    ctx.channels["logs/{topic}"](input),
  )
  // With presence, one roster per name.
  .channel(
    "halls/{hall}",
    { params: v.object({ hall: v.string() }), presence: (ctx) => ctx.connection.state.user },
    () => null,
  )
  // With presence: who is in the room's lobby.
  .channel("lobby", { presence: (ctx) => ({ name: ctx.connection.state.user }) }, () => null)
  // With presence across shards (rooms): who is in the hall, wherever they connected.
  .channel("hall", { presence: (ctx) => ({ name: ctx.connection.state.user }) }, () => null)
  .action("visit", (_, ctx) => {
    ctx.connection.state.visits += 1;
    return ctx.connection.state;
  })
  .action("whoami", (_, ctx) => ({
    id: ctx.connection.id,
    state: ctx.connection.state,
    url: ctx.request.url,
  }))
  .action("announce", { input: v.object({ text: v.string() }) }, (input, ctx) =>
    ctx.channels.news(input),
  )
  .action("alert", { input: v.object({ text: v.string() }) }, (input, ctx) =>
    ctx.channels.alerts(input),
  )
  .action("here", (_, ctx) => ({
    connections: ctx.app.connections.size,
    subscribers: ctx.app.subscriberCount("alerts"),
  }))
  .action("everywhere", { input: v.object({ channel: v.string() }) }, ({ channel }, ctx) =>
    ctx.app.countSubscribers(channel),
  );

// The same app inside a Hono app on Workers: the middleware hands upgrades to the object.
const hono = new Hono().basePath("/hono");
hono.get("/health", (c) => c.json({ ok: true }));
hono.get("/ws", socketapi(app));

const deployment = cloudflare(app, {
  path: "/",
  shard: (request) => new URL(request.url).searchParams.get("room") ?? "lobby",
  keepHeaders: ["x-client"],
  keepQuery: ["room"],
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname.startsWith("/hono/")) return hono.fetch(request, env, ctx);
    if (url.pathname === "/alerts") {
      const delivered = await app.channels.alerts({ text: url.searchParams.get("text") ?? "" });
      return Response.json({ delivered });
    }
    if (url.pathname === "/notices") {
      const delivered = await app.channels.notices({ text: url.searchParams.get("text") ?? "" });
      return Response.json({ delivered });
    }
    if (url.pathname === "/disconnect") {
      const closed = await app.disconnectUser(url.searchParams.get("user") ?? "", {
        code: 4003,
        reason: "Banned",
      });
      return Response.json({ closed });
    }
    if (url.pathname === "/count") {
      return Response.json(await app.countSubscribers(url.searchParams.get("channel") ?? ""));
    }
    if (url.pathname === "/presence") {
      const channel = url.searchParams.get("channel") ?? "";
      return Response.json({
        members: await app.presence(channel),
        count: await app.presenceCount(channel),
      });
    }
    if (url.pathname === "/rooms") {
      const room = url.searchParams.get("room") ?? "";
      const delivered = await app.channels["rooms/{room}"]({ room, text: "from the worker" });
      return Response.json({ delivered });
    }
    return new Response("Not Found", { status: 404 });
  },
});

export const { worker } = deployment;

/**
 * The object class the tests bind, with one shard (`broken`) whose every delivery fails:
 * a stand-in for a shard the platform cannot reach.
 */
export class SocketAPIObject extends deployment.SocketAPIObject {
  override async deliver(channel: string, frame: string): Promise<number> {
    if (this.ctx.id.name === "broken") throw new Error("shard unreachable");
    return super.deliver(channel, frame);
  }
}

export default worker;
