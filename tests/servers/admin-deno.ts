// The conformance app on Deno with the dashboard (ADMIN_TOKEN): PORT, SIGTERM shuts down.
import { deno } from "../../adapters/deno.ts";
import app from "./conformance-app.ts";

const socketapi = deno(app, { admin: { token: Deno.env.get("ADMIN_TOKEN") ?? "" } });
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
