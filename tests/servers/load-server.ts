// The server of the fuzz, load and churn tests: Node, started with --expose-gc so that it
// can report its heap after a collection. PORT; SIGTERM shuts it down.
import * as v from "valibot";
import { serve } from "../../adapters/node.ts";
import { hubOf } from "../../src/adapter.ts";
import { SocketAPI, SocketAPIError, subscribeParam } from "../../src/index.ts";

let unexpectedErrors = 0;
const collect = (globalThis as { gc?: () => void }).gc;

const app = new SocketAPI({
  maxMessageBytes: 64 * 1024,
  maxBufferedBytes: 1024 * 1024,
  maxConnections: 5000,
  // The fuzzer and the load generator send far faster than a client should.
  rateLimit: { messagesPerSecond: 100_000, burst: 100_000 },
  onError: () => {
    unexpectedErrors++;
  },
})
  .action(
    "add_numbers",
    { input: v.object({ a: v.pipe(v.number(), v.integer()), b: v.pipe(v.number(), v.integer()) }) },
    ({ a, b }) => a + b,
  )
  .action("echo", { input: v.unknown() }, (input) => input)
  .action(
    "strict",
    { input: v.strictObject({ name: v.string(), tags: v.array(v.string()) }) },
    ({ name }) => name,
  )
  .action("crash", () => {
    throw new Error("SECRET internal detail at /srv/app.ts:42");
  })
  .action("refuse", () => {
    throw new SocketAPIError("Nope.", { code: "NOPE" });
  })
  .channel(
    "chat",
    { params: v.object({ message: v.optional(v.string(), "") }) },
    ({ message }) => ({ message }),
  )
  .channel(
    "rooms/{room}",
    {
      params: v.object({
        room: v.pipe(v.string(), v.maxLength(20)),
        token: subscribeParam(v.optional(v.string(), "")),
      }),
    },
    ({ room }) => room,
  )
  .channel("secret", () => "for the bystander only")
  // History and presence, for the fuzzer's since and presence keys.
  .channel(
    "journal",
    {
      history: { size: 20, ttl: 60_000 },
      presence: (ctx) => ({ id: ctx.connection.id.slice(0, 8) }),
    },
    () => null,
  )
  .channel(
    "load",
    { params: v.object({ seq: v.optional(v.number(), -1), pad: v.optional(v.string(), "") }) },
    ({ seq, pad }): number | { seq: number; pad: string } => (pad ? { seq, pad } : seq),
  )
  .action(
    "broadcast_many",
    { input: v.object({ count: v.number(), size: v.optional(v.number(), 0) }) },
    async ({ count, size }, ctx) => {
      const pad = "x".repeat(size);
      let delivered = 0;
      for (let seq = 0; seq < count; seq++) delivered += await ctx.channels.load({ seq, pad });
      return delivered;
    },
  )
  .action(
    "_stats",
    (): {
      connections: number;
      channels: number;
      load: number;
      heapUsed: number;
      unexpectedErrors: number;
    } => {
      collect?.();
      return {
        connections: app.connections.size,
        channels: hubOf(app).index.size(),
        load: hubOf(app).subscriberCount("load"),
        heapUsed: process.memoryUsage().heapUsed,
        unexpectedErrors,
      };
    },
  );

const server = await serve(app, { port: Number(process.env.PORT) });
console.log(`listening at ${server.url}`);
process.on("SIGTERM", async () => {
  await server.close({ timeout: 1000 });
  process.exit(0);
});
