// The scaling app on Deno, with the relay RELAY_URL names; fails to start when it cannot connect.
import { deno } from "../../adapters/deno.ts";
import app from "./scaling-app.ts";

await app.ready();
Deno.serve(
  {
    port: Number(Deno.env.get("PORT")),
    hostname: "127.0.0.1",
    onListen: ({ port }) => console.log(`listening at ws://127.0.0.1:${port}/`),
  },
  deno(app).fetch,
);
