// Socket.IO 4 on Node, the way its docs show: acknowledgements for actions, a room for
// fan-out. WebSocket transport only, as the load generator connects.
import { createServer } from "node:http";
import { Server } from "socket.io";

const server = createServer((req, res) => {
  if (req.url?.startsWith("/__memory")) {
    (globalThis as { gc?: () => void }).gc?.();
    res.end(JSON.stringify(process.memoryUsage()));
  }
});
const io = new Server(server, { transports: ["websocket"], serveClient: false });
io.on("connection", (socket) => {
  socket.on("add_numbers", (data: { a: number; b: number }, ack: (sum: number) => void) =>
    ack(data.a + data.b),
  );
  socket.on("subscribe", (ack: () => void) => {
    void socket.join("fanout");
    ack();
  });
  socket.on("broadcast", (data: { count: number }, ack: () => void) => {
    for (let seq = 0; seq < data.count; seq++) io.to("fanout").emit("fanout", { seq });
    ack();
  });
});
server.listen(Number(process.env.PORT), "127.0.0.1", () =>
  console.log(`listening at http://127.0.0.1:${process.env.PORT}/`),
);
process.on("SIGINT", () => process.exit(0));
