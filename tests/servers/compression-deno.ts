// Serves the compression app on Deno: PORT.
import { deno } from "../../adapters/deno.ts";
import app from "./compression-app.ts";

Deno.serve(
  {
    port: Number(Deno.env.get("PORT")),
    hostname: "127.0.0.1",
    onListen: ({ port }) => console.log(`listening at ws://127.0.0.1:${port}/`),
  },
  deno(app).fetch,
);
