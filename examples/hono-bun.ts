/** The Hono example on Bun: `npm run start:hono:bun` (PORT, default 8000). */
import { websocket } from "socketapi/bun";
import hono from "./hono.ts";
import app from "./main.ts";

const server = Bun.serve({
  fetch: hono.fetch,
  // Bun's own limit: frames over it close with 1009 before they are read.
  websocket: { ...websocket, maxPayloadLength: app.maxMessageBytes * 4 },
  port: Number(process.env.PORT ?? 8000),
  hostname: "127.0.0.1",
});
console.log(`SocketAPI: serving examples/hono.ts at ws://${server.hostname}:${server.port}/`);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    await app.closeConnections();
    await server.stop(true);
    process.exit(0);
  });
}
