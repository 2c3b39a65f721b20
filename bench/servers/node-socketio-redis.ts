// Socket.IO 4 on Node as one of several instances, with @socket.io/redis-adapter over
// ioredis, the way its docs show; for the cross-process fan-out. With RELAY_URL
// redis-cluster://host:port,..., its sharded adapter (`createShardedAdapter`) over an
// ioredis Cluster with sharded subscribers, as its docs show for Redis Cluster. Counts the
// messages its Redis subscriber receives, to compare with SocketAPI's interest routing.
import { createServer } from "node:http";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { Cluster, Redis } from "ioredis";
import { Server } from "socket.io";

const url = process.env.RELAY_URL ?? "redis://127.0.0.1:6379";
let received = 0;
let adapter: ReturnType<typeof createAdapter> | ReturnType<typeof createShardedAdapter>;
if (url.startsWith("redis-cluster://")) {
  const nodes = url
    .slice("redis-cluster://".length)
    .split(",")
    .map((node) => ({ host: node.split(":")[0] as string, port: Number(node.split(":")[1]) }));
  const pubClient = new Cluster(nodes);
  const subClient = new Cluster(nodes, { shardedSubscribers: true });
  subClient.on("smessageBuffer", () => received++);
  adapter = createShardedAdapter(pubClient, subClient);
} else {
  const pubClient = new Redis(url);
  const subClient = pubClient.duplicate();
  subClient.on("messageBuffer", () => received++);
  subClient.on("pmessageBuffer", () => received++);
  adapter = createAdapter(pubClient, subClient);
}

const server = createServer();
const io = new Server(server, {
  transports: ["websocket"],
  serveClient: false,
  adapter,
});
io.on("connection", (socket) => {
  socket.on("subscribe", (ack: () => void) => {
    void socket.join("fanout");
    ack();
  });
  socket.on("broadcast", (data: { count: number }, ack: () => void) => {
    for (let seq = 0; seq < data.count; seq++) io.to("fanout").emit("fanout", { seq });
    ack();
  });
  socket.on("broadcast_seq", (data: { seq: number }, ack: () => void) => {
    io.to("fanout").emit("fanout", { seq: data.seq });
    ack();
  });
  socket.on("relay_stats", (ack: (stats: { received: number }) => void) => ack({ received }));
});
server.listen(Number(process.env.PORT), "127.0.0.1", () =>
  console.log(`listening at http://127.0.0.1:${process.env.PORT}/`),
);
process.on("SIGINT", () => process.exit(0));
