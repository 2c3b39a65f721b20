// Serves the conformance app on Deno: PORT, SIGTERM shuts down gracefully.
import { deno } from "../../adapters/deno.ts";
import app from "./conformance-app.ts";

// SOCKETAPI_PATH: serve only that path (the conformance suite's path checks). ADMIN_TOKEN:
// the dashboard, with that token (tests/admin.test.ts).
const token = Deno.env.get("ADMIN_TOKEN");
const socketapi = deno(app, {
  path: Deno.env.get("SOCKETAPI_PATH"),
  docs: true,
  fallback: true,
  ...(token ? { admin: { token } } : {}),
});
const server = Deno.serve(
  {
    port: Number(Deno.env.get("PORT")),
    hostname: "127.0.0.1",
    onListen: ({ port }) => console.log(`listening at ws://127.0.0.1:${port}/`),
  },
  socketapi.fetch,
);
Deno.addSignalListener("SIGTERM", async () => {
  await socketapi.shutdown();
  await server.shutdown();
  Deno.exit(0);
});
