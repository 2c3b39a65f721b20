// crossws on Node, the way its docs show: hooks, `peer.subscribe`, and publishing with the
// adapter's pub/sub; the same JSON protocol as the others.
import { createServer } from "node:http";
import { defineHooks } from "crossws";
import crossws from "crossws/adapters/node";

const hooks = defineHooks({
  message(peer, message) {
    const frame = message.json<{
      type: string;
      channel: string;
      data: { a: number; b: number; count: number };
      id: number;
    }>();
    if (frame.type === "action" && frame.channel === "add_numbers") {
      peer.send(
        JSON.stringify({
          type: "action",
          channel: "add_numbers",
          status: "completed",
          data: frame.data.a + frame.data.b,
          id: frame.id,
        }),
      );
    } else if (frame.type === "subscribe") {
      peer.subscribe("fanout");
      peer.send(JSON.stringify({ type: "subscribed", channel: "fanout", id: frame.id }));
    } else if (frame.type === "action" && frame.channel === "broadcast") {
      for (let seq = 0; seq < frame.data.count; seq++) {
        ws.publish("fanout", JSON.stringify({ type: "data", channel: "fanout", data: { seq } }));
      }
      peer.send(
        JSON.stringify({ type: "action", channel: "broadcast", status: "completed", id: frame.id }),
      );
    }
  },
});
const ws = crossws({ hooks });
const server = createServer((_req, res) => {
  (globalThis as { gc?: () => void }).gc?.();
  res.end(JSON.stringify(process.memoryUsage()));
});
server.on("upgrade", (req, socket, head) => void ws.handleUpgrade(req, socket, head));
server.listen(Number(process.env.PORT), "127.0.0.1", () =>
  console.log(`listening at ws://127.0.0.1:${process.env.PORT}/`),
);
process.on("SIGINT", () => process.exit(0));
