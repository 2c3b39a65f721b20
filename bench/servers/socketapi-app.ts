// The SocketAPI subject's app, shared by Node and Bun: valibot validation on, defaults
// except the per-connection rate limit (the load generator sends far over it, as no raw
// subject limits anything).
import * as v from "valibot";
import { SocketAPI } from "../../src/index.ts";

export const app = new SocketAPI({ rateLimit: false })
  .action("add_numbers", { input: v.object({ a: v.number(), b: v.number() }) }, ({ a, b }) => a + b)
  .channel("fanout", { params: v.object({ seq: v.optional(v.number(), 0) }) }, ({ seq }) => ({
    seq,
  }))
  .action("broadcast", { input: v.object({ count: v.number() }) }, async ({ count }, ctx) => {
    for (let seq = 0; seq < count; seq++) await ctx.channels.fanout({ seq });
  });
