// The scaling app on Bun, with the relay RELAY_URL names; fails to start when it cannot connect.
import { bun } from "../../adapters/bun.ts";
import app from "./scaling-app.ts";

await app.ready();
const socketapi = bun(app);
const server = Bun.serve({ ...socketapi, port: Number(process.env.PORT), hostname: "127.0.0.1" });
console.log(`listening at ws://127.0.0.1:${server.port}/`);
