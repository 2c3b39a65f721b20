// crossws on Bun, the way its docs show: hooks, `peer.subscribe`, the adapter's publish.
import { defineHooks } from "crossws";
import crossws from "crossws/adapters/bun";

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
const server = Bun.serve({
  port: Number(process.env.PORT),
  hostname: "127.0.0.1",
  websocket: ws.websocket,
  fetch(request, server) {
    if (request.headers.get("upgrade") === "websocket") return ws.handleUpgrade(request, server);
    Bun.gc(true);
    return Response.json(process.memoryUsage());
  },
});
console.log(`listening at ws://127.0.0.1:${server.port}/`);
