// The SocketAPI subject's app, shared by Node, Bun and Deno: valibot validation on,
// defaults except the per-connection rate limit (the load generator sends far over it, as
// no raw subject limits anything), the connection limit (the scale scenario opens
// 19,000, over the default 10,000) and the presence leave delay.
import * as v from "valibot";
import { hubOf } from "../../src/adapter.ts";
import { SocketAPI } from "../../src/index.ts";

// presenceLeaveDelay 0: the join/leave storm measures the frames' cost; the default delay
// (1 s) would add a constant second to the time until every leave is heard.
export const app = new SocketAPI({
  rateLimit: false,
  maxConnections: 50_000,
  presenceLeaveDelay: 0,
})
  .action("add_numbers", { input: v.object({ a: v.number(), b: v.number() }) }, ({ a, b }) => a + b)
  .channel("fanout", { params: v.object({ seq: v.optional(v.number(), 0) }) }, ({ seq }) => ({
    seq,
  }))
  // The same channel with history: each broadcast is kept and carries its offset.
  .channel(
    "fanout_history",
    {
      params: v.object({ seq: v.optional(v.number(), 0) }),
      history: { size: 1000, ttl: 60_000 },
    },
    ({ seq }) => ({ seq }),
  )
  .action(
    "broadcast",
    { input: v.object({ count: v.number(), history: v.optional(v.boolean(), false) }) },
    async ({ count, history }, ctx) => {
      const channel = history ? ctx.channels.fanout_history : ctx.channels.fanout;
      for (let seq = 0; seq < count; seq++) await channel({ seq });
    },
  )
  // With presence: every connection a member (no userId), for the join/leave storm.
  .channel("lobby", { presence: (ctx) => ({ id: ctx.connection.id.slice(0, 8) }) }, () => null)
  // One broadcast with the load generator's number, for latency across processes.
  .action("broadcast_seq", { input: v.object({ seq: v.number() }) }, async ({ seq }, ctx) => {
    await ctx.channels.fanout({ seq });
  })
  // What the app's relay received, when it has one (the cross-process subjects).
  .action("relay_stats", () => ({ received: relayReceived() }))
  // A streaming answer of `count` small chunks, as fast as the connection takes them.
  .action("stream", { input: v.object({ count: v.number() }) }, async function* ({ count }) {
    for (let seq = 0; seq < count; seq++) yield { seq };
  })
  // A stream that sends one chunk, then waits until it is cancelled: for the memory an open
  // stream holds, and the time from its cancel to its generator's finally.
  .action("stream_hold", async function* (_, ctx) {
    let aborted = 0;
    const wait = new Promise<void>((resolve) => {
      ctx.signal.addEventListener("abort", () => {
        aborted = performance.now();
        resolve();
      });
    });
    try {
      yield { seq: 0 };
      await wait;
    } finally {
      if (aborted > 0) cancelToFinally.push(performance.now() - aborted);
    }
  })
  // The cancel-to-finally times measured since the last ask, in ms, sorted.
  .action("stream_stats", () => cancelToFinally.splice(0).sort((a, b) => a - b));

/** How long after its cancel each held stream's `finally` ran, in ms. */
const cancelToFinally: number[] = [];

function relayReceived(): number {
  return hubOf(app).relay?.stats?.received ?? 0;
}
