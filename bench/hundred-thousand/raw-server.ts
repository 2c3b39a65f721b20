// The limit of the 100,000-connection scenario: `ws` in WORKERS processes of node:cluster
// on one port, a broadcast carried to the other workers by the primary over IPC (as the
// CLI's --workers does), speaking just enough of SocketAPI's protocol for the load
// processes: subscribe to "everyone", the actions "shout" and "add".
import cluster from "node:cluster";
import { createServer } from "node:http";
import { type WebSocket, WebSocketServer } from "ws";

const workers = Number(process.env.WORKERS ?? 2);
const port = Number(process.env.PORT);

if (cluster.isPrimary) {
  let listening = 0;
  for (let i = 0; i < workers; i++) {
    const worker = cluster.fork();
    worker.on("listening", () => {
      if (++listening === workers) console.log(`listening at ws://127.0.0.1:${port}/`);
    });
    // A broadcast from one worker goes to every other one.
    worker.on("message", (text: string) => {
      for (const other of Object.values(cluster.workers ?? {})) {
        if (other && other !== worker) other.send(text);
      }
    });
  }
  process.on("SIGTERM", () => process.exit(0));
} else {
  const subscribers = new Set<WebSocket>();
  const deliver = (text: string) => {
    for (const subscriber of subscribers) subscriber.send(text);
  };
  process.on("message", deliver);
  const server = createServer();
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  wss.on("connection", (ws) => {
    ws.on("message", (raw) => {
      const frame = JSON.parse(raw.toString());
      const id = JSON.stringify(frame.id);
      if (frame.type === "subscribe") {
        subscribers.add(ws);
        ws.send(`{"type":"subscribed","channel":"everyone","id":${id}}`);
      } else if (frame.channel === "shout") {
        const text = `{"type":"data","channel":"everyone","data":{"seq":${frame.data.seq}}}`;
        process.send?.(text);
        deliver(text);
        ws.send(`{"type":"action","channel":"shout","status":"completed","id":${id}}`);
      } else if (frame.channel === "add") {
        ws.send(
          `{"type":"action","channel":"add","status":"completed","data":${frame.data.a + frame.data.b},"id":${id}}`,
        );
      }
    });
    ws.on("close", () => subscribers.delete(ws));
  });
  server.listen(port, "127.0.0.1", 4096);
}
