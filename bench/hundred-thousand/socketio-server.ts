// Socket.IO in the 100,000-connection scenario: WORKERS processes of node:cluster on one
// port, joined by its cluster adapter (@socket.io/cluster-adapter, the primary relaying
// between workers), WebSocket transport only, so no sticky sessions are needed. Every
// connection "join"s the room "everyone"; "shout" emits one `{ seq }` to it; "add" answers
// a + b.
import cluster from "node:cluster";
import { createServer } from "node:http";
import { createAdapter, setupPrimary } from "@socket.io/cluster-adapter";
import { Server } from "socket.io";

const workers = Number(process.env.WORKERS ?? 2);
const port = Number(process.env.PORT);

if (cluster.isPrimary) {
  setupPrimary();
  let listening = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork().on("listening", () => {
      if (++listening === workers) console.log(`listening at http://127.0.0.1:${port}/`);
    });
  }
  process.on("SIGTERM", () => process.exit(0));
} else {
  const server = createServer();
  const io = new Server(server, {
    transports: ["websocket"],
    serveClient: false,
    adapter: createAdapter(),
  });
  io.on("connection", (socket) => {
    socket.on("join", (ack: () => void) => {
      void socket.join("everyone");
      ack();
    });
    socket.on("shout", (seq: number, ack: () => void) => {
      io.to("everyone").emit("data", { seq });
      ack();
    });
    socket.on("add", (a: number, b: number, ack: (sum: number) => void) => ack(a + b));
  });
  // The same backlog as SocketAPI's serve.
  server.listen(port, "127.0.0.1", 4096);
}
