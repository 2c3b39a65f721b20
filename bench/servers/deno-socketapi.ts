// SocketAPI on Deno: the app of socketapi-app.ts.
import { deno } from "../../adapters/deno.ts";
import { memoryReport } from "./deno-memory.ts";
import { app } from "./socketapi-app.ts";

const handler = deno(app, { broadcast: false });
Deno.serve(
  {
    port: Number(Deno.env.get("PORT")),
    hostname: "127.0.0.1",
    onListen: ({ port }) => console.log(`listening at ws://127.0.0.1:${port}/`),
  },
  (request, info) =>
    new URL(request.url).pathname === "/__memory" ? memoryReport() : handler.fetch(request, info),
);
