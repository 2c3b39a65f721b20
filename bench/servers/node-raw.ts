// The limit on Node: `ws`, frames parsed, work done, answers written; with BENCH_CORK=1
// every socket's writes are corked and flushed once per event-loop turn (what uWS and
// Bun do by themselves). Without it: the naive loop of `ws.send`.
import { createServer } from "node:http";
import { type WebSocket, WebSocketServer } from "ws";
import { memoryReport } from "./node-memory.ts";

const cork = process.env.BENCH_CORK === "1";
const corked = new Set<WebSocket>();
let scheduled = false;
const flush = () => {
  scheduled = false;
  for (const ws of corked) (ws as unknown as { _socket: { uncork(): void } })._socket.uncork();
  corked.clear();
};
function send(ws: WebSocket, text: string): void {
  if (cork && !corked.has(ws)) {
    (ws as unknown as { _socket: { cork(): void } })._socket.cork();
    corked.add(ws);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  }
  ws.send(text);
}

const subscribers = new Set<WebSocket>();
const server = createServer(memoryReport);
const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on("connection", (ws) => {
  ws.on("message", async (raw) => {
    const frame = JSON.parse(raw.toString());
    if (frame.type === "action" && frame.channel === "add_numbers") {
      send(
        ws,
        `{"type":"action","channel":"add_numbers","status":"completed","data":${frame.data.a + frame.data.b},"id":${JSON.stringify(frame.id)}}`,
      );
    } else if (frame.type === "subscribe") {
      subscribers.add(ws);
      send(ws, `{"type":"subscribed","channel":"fanout","id":${JSON.stringify(frame.id)}}`);
    } else if (frame.type === "action" && frame.channel === "broadcast") {
      for (let seq = 0; seq < frame.data.count; seq++) {
        const text = `{"type":"data","channel":"fanout","data":{"seq":${seq}}}`;
        for (const subscriber of subscribers) send(subscriber, text);
        // Measured here: yielding a microtask between broadcasts is about 15% faster on
        // Node than one synchronous loop; the limit takes the faster way.
        await null;
      }
      send(
        ws,
        `{"type":"action","channel":"broadcast","status":"completed","id":${JSON.stringify(frame.id)}}`,
      );
    } else if (frame.type === "action" && frame.channel === "stream") {
      // The same frames as a streaming answer, from the same async generator as
      // SocketAPI's (`values`), read with `for await`: a chunk per value, then completed.
      const id = JSON.stringify(frame.id);
      for await (const value of values(frame.data.count)) {
        send(ws, `{"type":"chunk","channel":"stream","data":${JSON.stringify(value)},"id":${id}}`);
      }
      send(ws, `{"type":"action","channel":"stream","status":"completed","id":${id}}`);
    }
  });
  ws.on("close", () => subscribers.delete(ws));
});
server.listen(Number(process.env.PORT), "127.0.0.1", () =>
  console.log(`listening at ws://127.0.0.1:${process.env.PORT}/`),
);
process.on("SIGINT", () => process.exit(0));

/** The values a streaming answer sends: what the SocketAPI subject's `stream` action yields. */
async function* values(count: number) {
  for (let seq = 0; seq < count; seq++) yield { seq };
}
