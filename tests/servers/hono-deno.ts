// Serves the Hono conformance app on Deno: PORT, SIGTERM shuts down gracefully.
import app from "./conformance-app.ts";
import hono from "./hono.ts";

const server = Deno.serve(
  {
    port: Number(Deno.env.get("PORT")),
    hostname: "127.0.0.1",
    onListen: ({ port }) => console.log(`listening at ws://127.0.0.1:${port}/`),
  },
  hono.fetch,
);
Deno.addSignalListener("SIGTERM", async () => {
  await app.closeConnections();
  await server.shutdown();
  Deno.exit(0);
});
