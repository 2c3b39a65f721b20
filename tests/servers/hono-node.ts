// Serves the Hono conformance app on Node: PORT, SIGTERM shuts down gracefully.
import { serve } from "@hono/node-server";
import { injectWebSocket } from "../../adapters/node.ts";
import hono from "./hono.ts";

const server = serve(
  { fetch: hono.fetch, port: Number(process.env.PORT), hostname: "127.0.0.1" },
  (info) => console.log(`listening at ws://127.0.0.1:${info.port}/`),
);
const sockets = injectWebSocket(server, hono);
process.on("SIGTERM", async () => {
  await sockets.close();
  server.close(() => process.exit(0));
});
