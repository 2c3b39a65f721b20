// SocketAPI on Node, with valibot validation on, defaults except the per-connection rate
// limit (the load generator sends far over it, as no raw subject limits anything).
import { createServer } from "node:http";
import { getHeapSpaceStatistics } from "node:v8";
import * as v from "valibot";
import { attach } from "../../adapters/node.ts";
import { SocketAPI } from "../../src/index.ts";

const app = new SocketAPI({ rateLimit: false })
  .action("add_numbers", { input: v.object({ a: v.number(), b: v.number() }) }, ({ a, b }) => a + b)
  .channel("fanout", { params: v.object({ seq: v.optional(v.number(), 0) }) }, ({ seq }) => ({
    seq,
  }))
  .action("broadcast", { input: v.object({ count: v.number() }) }, async ({ count }, ctx) => {
    for (let seq = 0; seq < count; seq++) await ctx.channels.fanout({ seq });
  });

const server = createServer((_req, res) => {
  (globalThis as { gc?: () => void }).gc?.();
  res.end(JSON.stringify({ ...process.memoryUsage(), ...spaces() }));
});
attach(app, server);
server.listen(Number(process.env.PORT), "127.0.0.1", () =>
  console.log(`listening at ws://127.0.0.1:${process.env.PORT}/`),
);
process.on("SIGINT", () => process.exit(0));

function spaces(): Record<string, number> {
  return Object.fromEntries(
    getHeapSpaceStatistics().map((space) => [space.space_name, space.space_size]),
  );
}
