// SocketAPI on Node as one of several instances: the app of socketapi-app.ts with the relay
// RELAY_URL names (redis://..., nats://..., or redis-cluster://host:port,host:port for a
// Redis Cluster over sharded pub/sub), for the cross-process fan-out.
import { serve } from "../../adapters/node.ts";
import { natsRelay } from "../../relays/nats.ts";
import { redisRelay } from "../../relays/redis.ts";
import { hubOf } from "../../src/adapter.ts";
import { app } from "./socketapi-app.ts";

const url = process.env.RELAY_URL ?? "";
const relay = url.startsWith("nats:")
  ? natsRelay(url)
  : url.startsWith("redis-cluster:")
    ? redisRelay({ cluster: url.slice("redis-cluster://".length).split(",") })
    : redisRelay(url);
hubOf(app).useRelay(relay);
await serve(app, { port: Number(process.env.PORT), broadcast: false });
console.log(`listening at ws://127.0.0.1:${process.env.PORT}/`);
process.on("SIGINT", () => process.exit(0));
