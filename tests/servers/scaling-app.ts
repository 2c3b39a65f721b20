// The app of the scaling tests: run as several instances sharing broadcasts through a relay
// (Redis, NATS, or the cluster's primary). Each instance says who it is, how much its relay
// carried, and broadcasts on request.
import * as v from "valibot";
import { natsRelay } from "../../relays/nats.ts";
import { redisRelay } from "../../relays/redis.ts";
import { hubOf } from "../../src/adapter.ts";
import { type Relay, type RelayStats, SocketAPI } from "../../src/index.ts";

const instance = process.env.INSTANCE ?? String(process.pid);
/** What the app reported to `onError`, for the tests to read. */
const errors: string[] = [];

/** The relay RELAY_URL names (`redis://...` or `nats://...`), if any. */
function relayFromEnv(url = process.env.RELAY_URL): Relay | undefined {
  if (!url) return undefined;
  if (url.startsWith("nats:")) return natsRelay(url);
  // PRESENCE_HEARTBEAT_MS: short heartbeats, so that a test sees a dead instance's members leave.
  const heartbeat = Number(process.env.PRESENCE_HEARTBEAT_MS) || undefined;
  return redisRelay({ url, presenceHeartbeat: heartbeat });
}

// With RELAY_URL, through that relay; the socketapi command gives one with --redis/--nats.
const app = new SocketAPI({
  relay: relayFromEnv(),
  // tests/scaling.test.ts bursts 8 MiB of broadcasts at a client that a loaded test
  // process may read slower than that comes: what it checks is the relay's bound, not
  // the slow-consumer limit (4 MiB by default, tested in tests/channels.test.ts).
  maxBufferedBytes: 32 * 1024 * 1024,
  onConnect: (request, credential) => {
    const url = new URL(request.url);
    // `?ttl=MS`: the connection's credential expires MS from now.
    const ttl = Number(url.searchParams.get("ttl"));
    if (ttl > 0) credential.expiresAt = Date.now() + ttl;
    return { user: url.searchParams.get("user") ?? "anonymous" };
  },
  userId: (connection) => connection.state.user,
  onError: (error, info) => {
    errors.push(`${info.phase}: ${error instanceof Error ? error.message : String(error)}`);
  },
})
  // Parameters are checked on subscribe too: there they are left out.
  .channel(
    "news",
    {
      params: v.object({
        seq: v.optional(v.number(), 0),
        from: v.optional(v.string(), ""),
        pad: v.optional(v.string()),
      }),
    },
    (news) => news,
  )
  .channel(
    "rooms/{room}",
    {
      params: v.object({
        room: v.string(),
        text: v.optional(v.string(), ""),
        from: v.optional(v.string(), ""),
      }),
    },
    ({ text, from }) => ({ text, from }),
  )
  // With presence: members across every instance over Redis.
  .channel(
    "lobby",
    { presence: (ctx) => ({ instance, user: ctx.connection.state.user }) },
    () => null,
  )
  .action("whoami", () => ({ instance, pid: process.pid }))
  .action("relay_stats", () => ({ stats: relayStats(), errors }))
  .action(
    "burst",
    // `bytes`: each broadcast carries that many more, to load the relay.
    { input: v.object({ count: v.number(), bytes: v.optional(v.number(), 0) }) },
    ({ count, bytes }, ctx) => {
      const pad = bytes > 0 ? "x".repeat(bytes) : undefined;
      for (let seq = 0; seq < count; seq++) {
        void ctx.channels.news(pad ? { seq, from: instance, pad } : { seq, from: instance });
      }
      return count;
    },
  )
  .action(
    "say",
    { input: v.object({ room: v.string(), text: v.string() }) },
    ({ room, text }, ctx) => ctx.channels["rooms/{room}"]({ room, text, from: instance }),
  );

// The members of the lobby and their connections, on every instance.
app.action("lobby_count", () => app.presenceCount("lobby"));
// The subscribers of a channel on every instance.
app.action("count_subscribers", { input: v.object({ channel: v.string() }) }, ({ channel }) =>
  app.countSubscribers(channel),
);

// Ends a user's sessions on every instance (from a handler: ctx.app).
app.action(
  "disconnect_user",
  { input: v.object({ user: v.string(), code: v.optional(v.number()) }) },
  ({ user, code }, ctx) => ctx.app.disconnectUser(user, { code, reason: "Banned" }),
);

/** What the app's relay counted (it may come from the socketapi command's --redis or --nats). */
function relayStats(): RelayStats | null {
  return hubOf(app).relay?.stats ?? null;
}

export default app;
