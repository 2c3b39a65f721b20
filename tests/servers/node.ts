// Serves the conformance app on Node: PORT, SIGTERM shuts down gracefully.
import { serve } from "../../adapters/node.ts";
import app from "./conformance-app.ts";

const server = await serve(app, { port: Number(process.env.PORT) });
console.log(`listening at ${server.url}`);
process.on("SIGTERM", async () => {
  await server.close();
  process.exit(0);
});
