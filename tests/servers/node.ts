// Serves the conformance app on Node: PORT, SIGTERM shuts down gracefully.
import { serve } from "../../adapters/node.ts";
import app from "./conformance-app.ts";

// SOCKETAPI_PATH: serve only that path (the conformance suite's path checks).
const server = await serve(app, {
  port: Number(process.env.PORT),
  path: process.env.SOCKETAPI_PATH,
  docs: true,
  fallback: true,
});
console.log(`listening at ${server.url}`);
process.on("SIGTERM", async () => {
  await server.close();
  process.exit(0);
});
