// Serves the compression app on Bun: PORT.
import { bun } from "../../adapters/bun.ts";
import app from "./compression-app.ts";

const server = Bun.serve({ ...bun(app), port: Number(process.env.PORT), hostname: "127.0.0.1" });
console.log(`listening at ws://127.0.0.1:${server.port}/`);
