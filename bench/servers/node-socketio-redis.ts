// Socket.IO 4 on Node as one of several instances, with @socket.io/redis-adapter over
// ioredis, the way its docs show; for the cross-process fan-out. Counts the messages its
// Redis subscriber receives, to compare with SocketAPI's interest routing.
import { createServer } from "node:http";
import { createAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";
import { Server } from "socket.io";

const pubClient = new Redis(process.env.RELAY_URL ?? "redis://127.0.0.1:6379");
const subClient = pubClient.duplicate();
let received = 0;
subClient.on("messageBuffer", () => received++);
subClient.on("pmessageBuffer", () => received++);

const server = createServer();
const io = new Server(server, {
  transports: ["websocket"],
  serveClient: false,
  adapter: createAdapter(pubClient, subClient),
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
