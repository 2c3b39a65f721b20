// crossws on Bun, the way its docs show: hooks, `peer.subscribe`, the adapter's publish.
import crossws from "crossws/adapters/bun";
import { benchHooks } from "./crossws-hooks.ts";

const ws = crossws({ hooks: benchHooks((topic, text) => ws.publish(topic, text)) });
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
