// Serves the Hono conformance app on Bun: PORT, SIGTERM shuts down gracefully.
import { websocket } from "../../adapters/bun.ts";
import app from "./conformance-app.ts";
import hono from "./hono.ts";

const server = Bun.serve({
  fetch: hono.fetch,
  // Bun's own limit: frames over it close with 1009 before they are read.
  websocket: { ...websocket, maxPayloadLength: app.maxMessageBytes * 4 },
  port: Number(process.env.PORT),
  hostname: "127.0.0.1",
});
console.log(`listening at ws://127.0.0.1:${server.port}/`);
process.on("SIGTERM", async () => {
  await app.closeConnections();
  await server.stop(true);
  process.exit(0);
});
