// The app of the network-fault tests and bench: one instance on a host of its own
// (tests/helpers/netns.ts), over Redis at REDIS_URL. "ticks" keeps a history, "plain" does
// not; with PUBLISH_EVERY (ms) the instance broadcasts `{ seq, at }` on both that often,
// `at` being its clock (the hosts share the machine's). "status" answers what its relay
// counted and how the process is doing.
import * as v from "valibot";
import { serve } from "../../adapters/node.ts";
import { redisRelay } from "../../relays/redis.ts";
import { hubOf } from "../../src/adapter.ts";
import { type Relay, type RelayHealth, type RelayStats, SocketAPI } from "../../src/index.ts";

const instance = process.env.INSTANCE ?? String(process.pid);
const errors: string[] = [];
const tick = v.object({
  seq: v.optional(v.number(), 0),
  at: v.optional(v.number(), 0),
  from: v.optional(v.string(), ""),
  pad: v.optional(v.string()),
});

/** What "status" answers. */
export interface Status {
  instance: string;
  stats: RelayStats | null;
  health: RelayHealth | null;
  errors: string[];
  rss: number;
}

const app = new SocketAPI({
  relay: redisRelay({
    url: process.env.REDIS_URL as string,
    ...(process.env.MAX_PENDING_BYTES && {
      maxPendingBytes: Number(process.env.MAX_PENDING_BYTES),
    }),
  }),
  onError: (error, info) => {
    if (errors.length < 100) {
      errors.push(`${info.phase}: ${error instanceof Error ? error.message : String(error)}`);
    }
  },
})
  .channel("ticks", { params: tick, history: { size: 10_000, ttl: 300_000 } }, (t) => t)
  .channel("plain", { params: tick }, (t) => t)
  .action("status", (): Status => {
    const relay: Relay | undefined = hubOf(app).relay;
    return {
      instance,
      stats: relay?.stats ?? null,
      health: relay?.health ?? null,
      errors,
      rss: process.memoryUsage().rss,
    };
  });

const publishEvery = Number(process.env.PUBLISH_EVERY ?? 0);
const pad = process.env.PAD_BYTES ? "x".repeat(Number(process.env.PAD_BYTES)) : undefined;
if (publishEvery > 0) {
  let seq = 0;
  setInterval(() => {
    seq++;
    const frame = { seq, at: Date.now(), from: instance, ...(pad && { pad }) };
    app.channels.ticks(frame).catch(() => {});
    app.channels.plain(frame).catch(() => {});
  }, publishEvery);
}

const server = await serve(app, { port: Number(process.env.PORT ?? 8000), host: "0.0.0.0" });
console.log(`listening on port ${server.port}`);
process.on("SIGTERM", () => process.exit(0));
