// The SocketAPI app of the 100,000-connection scenario, served by the CLI with `--workers`:
// every connection subscribes to "everyone"; "shout" broadcasts one `{ seq }` to all of
// them (carried to the other workers by the primary) and answers once it is sent; "add" is
// the round trip the scenario counts while all are connected.
import * as v from "valibot";
import { SocketAPI } from "../../src/index.ts";

const app = new SocketAPI({ maxConnections: 30_000 })
  .channel("everyone", { params: v.object({ seq: v.optional(v.number(), 0) }) }, ({ seq }) => ({
    seq,
  }))
  .action("shout", { input: v.object({ seq: v.number() }) }, async ({ seq }, ctx) => {
    await ctx.channels.everyone({ seq });
  })
  .action("add", { input: v.object({ a: v.number(), b: v.number() }) }, ({ a, b }) => a + b);

export default app;
