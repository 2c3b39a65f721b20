/**
 * The app every runtime serves for the cross-runtime conformance suite: the seed example
 * plus a channel with a parameter in its name, subscribe-time parameters, a guard, errors,
 * the request context, and a way to look at the server's state from outside.
 */
import * as v from "valibot";
import {
  ForbiddenError,
  RequestCancelledError,
  SocketAPI,
  SocketAPIError,
  subscribeParam,
  UnauthorizedError,
} from "../../src/index.ts";
import { msgpack } from "../../src/msgpack.ts";

/** What the streaming action's generators did, in this place (process, Durable Object). */
const streams = { open: 0, finished: 0, cancelled: 0, pulledBytes: 0 };

/** The claims of the suite's tokens, `user:NAME:TTL`; `undefined` for anything else. */
function claimsOf(token: string): { user: string; ttl: number } | undefined {
  const [kind, user, ttl] = token.split(":");
  const ms = Number(ttl);
  if (kind !== "user" || !user || !Number.isFinite(ms)) return undefined;
  return { user, ttl: ms };
}

/** Waits `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

const app = new SocketAPI({
  maxMessageBytes: 64 * 1024,
  // The suite runs twice: in JSON, and in MessagePack for clients that offer it.
  codecs: [msgpack],
  // Limits low enough for the suite to reach them quickly.
  rateLimit: { messagesPerSecond: 300, burst: 300, maxViolations: 100 },
  maxSubscriptions: 10,
  maxConnections: 40,
  maxBufferedBytes: 256 * 1024,
  allowedOrigins: ["http://allowed.example"],
  idleTimeout: 1,
  // Low enough for the suite to see a stream stopped by it (the suite's other streams end
  // sooner).
  streamTimeout: 4000,
  onConnect: (request, credential) => {
    const url = new URL(request.url);
    const refuse = url.searchParams.get("refuse");
    if (refuse) return new Response(`refused with ${refuse}`, { status: Number(refuse) });
    // A token `user:NAME:TTL` (what the suite offers in Sec-WebSocket-Protocol): the user,
    // and an expiry TTL ms from now.
    if (credential.source === "protocol") {
      const claims = claimsOf(credential.token ?? "");
      if (!claims) return new Response("Invalid token", { status: 401 });
      credential.expiresAt = Date.now() + claims.ttl;
      return { user: claims.user };
    }
    return { user: url.searchParams.get("user") ?? "anonymous" };
  },
  onRefresh: (credential, connection) => {
    const claims = claimsOf(credential.token ?? "");
    if (!claims) throw new UnauthorizedError("Token refused.");
    credential.expiresAt = Date.now() + claims.ttl;
    return { ...connection.state, user: claims.user };
  },
  userId: (connection) => connection.state.user,
})
  .action(
    "add_numbers",
    { input: v.object({ a: v.pipe(v.number(), v.integer()), b: v.pipe(v.number(), v.integer()) }) },
    ({ a, b }) => a + b,
  )
  .channel(
    "chat",
    { params: v.object({ message: v.optional(v.string(), "Welcome") }) },
    ({ message }) => ({
      message,
    }),
  )
  .action(
    "send_message",
    { input: v.object({ message: v.string() }) },
    async ({ message }, ctx) => {
      await ctx.channels.chat({ message });
    },
  )
  .channel(
    "rooms/{room}",
    {
      params: v.object({
        room: v.pipe(v.string(), v.regex(/^\d+$/)),
        text: v.optional(v.string(), ""),
      }),
    },
    ({ room, text }) => ({ room, text }),
  )
  .action("say", { input: v.object({ room: v.string(), text: v.string() }) }, (input, ctx) =>
    ctx.channels["rooms/{room}"](input),
  )
  .channel(
    "private",
    { params: v.object({ token: subscribeParam(v.string()) }), initialData: true },
    ({ token }) => {
      if (token !== "secret") throw new ForbiddenError("Invalid token.");
      return { welcome: true };
    },
  )
  .action("guarded", { input: v.object({ n: v.number() }), guard: ({ n }) => n > 0 }, ({ n }) => n)
  .action("fail_public", () => {
    throw new SocketAPIError("Room is full.", { code: "ROOM_FULL" });
  })
  .action("fail_internal", () => {
    throw new Error("secret detail");
  })
  .action("slow", async () => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    return "slow";
  })
  .action("nothing", () => undefined)
  .channel(
    "firehose",
    { params: v.object({ chunk: v.optional(v.string(), "") }) },
    ({ chunk }) => chunk,
  )
  .action(
    "flood",
    { input: v.object({ count: v.number(), size: v.number() }) },
    async ({ count, size }, ctx) => {
      const chunk = "x".repeat(size);
      let delivered = 0;
      for (let i = 0; i < count; i++) delivered += await ctx.channels.firehose({ chunk });
      return delivered;
    },
  )
  // With history: what a client missed while away is sent again (docs/recovery.md).
  .channel(
    "journal",
    { params: v.object({ n: v.optional(v.number(), 0) }), history: { size: 50, ttl: 60_000 } },
    ({ n }) => ({ n }),
  )
  .action(
    "write",
    { input: v.object({ from: v.number(), count: v.number() }) },
    async ({ from, count }, ctx) => {
      for (let n = from; n < from + count; n++) await ctx.channels.journal({ n });
      return count;
    },
  )
  // Targeted delivery: everyone but the sender, one connection, one user's connections.
  .action("shout", { input: v.object({ message: v.string() }) }, ({ message }, ctx) =>
    ctx.channels.chat.except(ctx.connection)({ message }),
  )
  .action("whisper", { input: v.object({ to: v.string(), message: v.string() }) }, (input, ctx) =>
    ctx.channels.chat.to(input.to)({ message: input.message }),
  )
  .action("notify", { input: v.object({ user: v.string(), message: v.string() }) }, (input, ctx) =>
    ctx.channels.chat.toUser(input.user)({ message: input.message }),
  )
  .action("my_id", (_, ctx) => ctx.connection.id)
  // Presence: who is in the lobby, one member per user.
  .channel(
    "lobby",
    { presence: (ctx) => ({ name: String(ctx.connection.state.user) }) },
    () => null,
  )
  // Ends a user's sessions wherever they are (here: this process, or this object).
  .action("disconnect_user", { input: v.object({ user: v.string() }) }, ({ user }, ctx) =>
    ctx.app.disconnectUser(user, { code: 4003, reason: "Banned" }),
  )
  .action("whoami", (_, ctx) => ({
    user: ctx.connection.state.user,
    path: new URL(ctx.request.url).pathname,
    probe: ctx.request.headers.get("x-probe"),
    // What the connection kept of Sec-WebSocket-Protocol (never the token).
    protocol: ctx.request.headers.get("sec-websocket-protocol"),
  }))
  .action("stats", (_input, ctx) => ({
    connections: ctx.app.connections.size,
    chat: ctx.app.subscriberCount("chat"),
    firehose: ctx.app.subscriberCount("firehose"),
  }))
  .action(
    "stream_count",
    {
      input: v.object({
        to: v.pipe(v.number(), v.integer(), v.maxValue(10_000)),
        delay: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(1000)), 0),
      }),
    },
    async function* ({ to, delay }, ctx) {
      streams.open++;
      try {
        for (let n = 1; n <= to; n++) {
          if (delay > 0) await pause(delay, ctx.signal);
          if (ctx.signal.aborted) return n - 1;
          yield n;
        }
        return to;
      } finally {
        streams.open--;
        streams.finished++;
        if (ctx.signal.reason instanceof RequestCancelledError) streams.cancelled++;
      }
    },
  )
  .action("stream_flood", async function* () {
    // Never waits: only the stream's backpressure keeps it from filling the memory.
    const chunk = "x".repeat(16 * 1024);
    streams.open++;
    try {
      for (;;) {
        streams.pulledBytes += chunk.length;
        yield chunk;
      }
    } finally {
      streams.open--;
      streams.finished++;
    }
  })
  .action("stream_state", () => ({ ...streams }))
  // Bytes in and out: as MessagePack bytes to a client that speaks it, as {"$bytes"} in JSON.
  .action("bytes", { input: v.object({ data: v.instance(Uint8Array) }) }, ({ data }) => ({
    length: data.length,
    head: data.subarray(0, 3),
  }))
  .channel(
    "bin",
    { params: v.object({ data: v.optional(v.instance(Uint8Array)) }) },
    ({ data }) => ({
      data,
    }),
  )
  .action(
    "send_bytes",
    { input: v.object({ data: v.instance(Uint8Array) }) },
    async (input, ctx) => {
      await ctx.channels.bin(input);
    },
  );

// Who is in the lobby, as the app counts it (on Workers, the object asks over RPC).
app.action("lobby_count", async () => ({
  count: await app.presenceCount("lobby"),
  members: await app.presence("lobby"),
}));

export default app;
