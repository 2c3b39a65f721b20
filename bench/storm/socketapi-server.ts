// The reconnect storm's SocketAPI server: 100 channels with history, on Node, over Redis
// (REDIS_URL) or with this process's memory (no REDIS_URL). With PUBLISH_EVERY (ms) it
// broadcasts to every room that often and holds no clients: the publisher instance. With
// CONNECT_RATE (upgrades per second) it sheds the upgrades past it with 503.
import * as v from "valibot";
import { serve } from "../../adapters/node.ts";
import { redisRelay } from "../../relays/redis.ts";
import { SocketAPI } from "../../src/index.ts";

export const ROOMS = 100;
const connectRate = Number(process.env.CONNECT_RATE ?? 0);
const redisUrl = process.env.REDIS_URL;

const app = new SocketAPI({
  relay: redisUrl ? redisRelay(redisUrl) : undefined,
  maxConnections: 25_000,
  connectRate: connectRate > 0 ? { perSecond: connectRate, burst: connectRate } : false,
}).channel(
  "rooms/{room}",
  {
    params: v.object({ room: v.string(), seq: v.optional(v.number(), 0) }),
    history: { size: 1000, ttl: 60_000 },
  },
  ({ seq }) => ({ seq }),
);
await app.ready();

/** The app's type, for the typed clients of bench/storm/clients.ts. */
export type StormApp = typeof app;

const publishEvery = Number(process.env.PUBLISH_EVERY ?? 0);
if (publishEvery > 0) {
  let seq = 0;
  const publish = async () => {
    seq++;
    const sends: Promise<unknown>[] = [];
    for (let room = 0; room < ROOMS; room++) {
      sends.push(app.channels["rooms/{room}"]({ room: String(room), seq }).catch(() => {}));
    }
    await Promise.all(sends);
  };
  setInterval(() => void publish(), publishEvery);
}

const server = await serve(app, { port: Number(process.env.PORT), broadcast: false });
console.log(`listening at ws://127.0.0.1:${server.port}/`);
process.on("SIGINT", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
