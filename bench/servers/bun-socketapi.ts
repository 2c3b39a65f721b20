// SocketAPI on Bun, with valibot validation on, defaults except the per-connection rate
// limit (the load generator sends far over it, as no raw subject limits anything).
import * as v from "valibot";
import { bun } from "../../adapters/bun.ts";
import { SocketAPI } from "../../src/index.ts";

const app = new SocketAPI({ rateLimit: false })
  .action("add_numbers", { input: v.object({ a: v.number(), b: v.number() }) }, ({ a, b }) => a + b)
  .channel("fanout", { params: v.object({ seq: v.optional(v.number(), 0) }) }, ({ seq }) => ({
    seq,
  }))
  .action("broadcast", { input: v.object({ count: v.number() }) }, async ({ count }, ctx) => {
    for (let seq = 0; seq < count; seq++) await ctx.channels.fanout({ seq });
  });

const handler = bun(app, { broadcast: false });
const server = Bun.serve({
  ...handler,
  port: Number(process.env.PORT),
  hostname: "127.0.0.1",
  fetch(request, server) {
    if (new URL(request.url).pathname === "/__memory") {
      Bun.gc(true);
      return Response.json(process.memoryUsage());
    }
    return handler.fetch(request, server);
  },
});
console.log(`listening at ws://127.0.0.1:${server.port}/`);
