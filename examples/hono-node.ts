/** The Hono example on Node: `npm run start:hono` (PORT, default 8000). */
import { serve } from "@hono/node-server";
import { injectWebSocket } from "socketapi/node";
import hono from "./hono.ts";

const port = Number(process.env.PORT ?? 8000);
const server = serve({ fetch: hono.fetch, port, hostname: "127.0.0.1" }, () => {
  console.log(`SocketAPI: serving examples/hono.ts at ws://127.0.0.1:${port}/`);
});
const sockets = injectWebSocket(server, hono);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    await sockets.close();
    server.close(() => process.exit(0));
  });
}
