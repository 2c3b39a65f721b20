// The conformance app on Bun with the dashboard (ADMIN_TOKEN): PORT, SIGTERM shuts down.
import { bun } from "../../adapters/bun.ts";
import app from "./conformance-app.ts";

const socketapi = bun(app, { admin: { token: process.env.ADMIN_TOKEN ?? "" } });
const server = Bun.serve({ ...socketapi, port: Number(process.env.PORT), hostname: "127.0.0.1" });
console.log(`listening at ws://127.0.0.1:${server.port}/`);
process.on("SIGTERM", async () => {
  await socketapi.shutdown(server);
  process.exit(0);
});
