// Serves the conformance app on Bun: PORT, SIGTERM shuts down gracefully.
import { bun } from "../../adapters/bun.ts";
import app from "./conformance-app.ts";

// SOCKETAPI_PATH: serve only that path (the conformance suite's path checks). ADMIN_TOKEN:
// the dashboard, with that token (tests/admin.test.ts).
const token = process.env.ADMIN_TOKEN;
const socketapi = bun(app, {
  path: process.env.SOCKETAPI_PATH,
  docs: true,
  fallback: true,
  ...(token ? { admin: { token } } : {}),
});
const server = Bun.serve({ ...socketapi, port: Number(process.env.PORT), hostname: "127.0.0.1" });
console.log(`listening at ws://127.0.0.1:${server.port}/`);
process.on("SIGTERM", async () => {
  await socketapi.shutdown(server);
  process.exit(0);
});
