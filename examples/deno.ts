/**
 * The seed example on Deno: `deno task start`, or `npm run start:deno` (PORT, default 8000).
 * On Deno Deploy, `export default deno(app)` is all it takes.
 */
import { deno } from "socketapi/deno";
import app from "./main.ts";

const socketapi = deno(app);
const port = Number(Deno.env.get("PORT") ?? 8000);
const server = Deno.serve(
  {
    port,
    hostname: "127.0.0.1",
    onListen: ({ hostname, port }) =>
      console.log(`SocketAPI: serving examples/main.ts at ws://${hostname}:${port}/`),
  },
  socketapi.fetch,
);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, async () => {
    await socketapi.shutdown();
    await server.shutdown();
    Deno.exit(0);
  });
}
