// Serves the Hono conformance app on Bun: PORT, SIGTERM shuts down gracefully.
import { websocket, websocketLimits } from "../../adapters/bun.ts";
import app from "./conformance-app.ts";
import hono from "./hono.ts";

const server = Bun.serve({
  fetch: hono.fetch,
  // The app's limits, as Bun applies them: frame size, dead peers, slow readers.
  websocket: { ...websocket, ...websocketLimits(app) },
  port: Number(process.env.PORT),
  hostname: "127.0.0.1",
});
console.log(`listening at ws://127.0.0.1:${server.port}/`);
process.on("SIGTERM", async () => {
  await app.closeConnections();
  await server.stop(true);
  process.exit(0);
});
