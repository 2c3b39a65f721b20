// The reconnect storm's Socket.IO server: the same 100 rooms, with connectionStateRecovery
// (its documented way to give back what a client missed), broadcasting to every room every
// PUBLISH_EVERY ms itself (one process: its recovery keeps state in this process's memory).
import { createServer } from "node:http";
import { Server } from "socket.io";

const ROOMS = 100;
const server = createServer();
const io = new Server(server, {
  transports: ["websocket"],
  serveClient: false,
  connectionStateRecovery: { maxDisconnectionDuration: 60_000 },
});
io.on("connection", (socket) => {
  socket.on("join", (room: string, ack: () => void) => {
    void socket.join(room);
    ack();
  });
});
let seq = 0;
setInterval(
  () => {
    seq++;
    for (let room = 0; room < ROOMS; room++) io.to(`rooms/${room}`).emit("data", { seq });
  },
  Number(process.env.PUBLISH_EVERY ?? 250),
);
server.listen(Number(process.env.PORT), "127.0.0.1", () =>
  console.log(`listening at http://127.0.0.1:${process.env.PORT}/`),
);
process.on("SIGINT", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
