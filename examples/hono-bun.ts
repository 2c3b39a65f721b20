/** The Hono example on Bun: `npm run start:hono:bun` (PORT, default 8000). */
import { websocket, websocketLimits } from "socketapi/bun";
import hono from "./hono.ts";
import app from "./main.ts";

const server = Bun.serve({
  fetch: hono.fetch,
  // The app's limits, as Bun applies them: frame size, dead peers, slow readers.
  websocket: { ...websocket, ...websocketLimits(app) },
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
