// The bench's app (socketapi-app.ts) on Node for bench/admin.ts: with the dashboard when ADMIN_TOKEN is set.
import { serve } from "../../adapters/node.ts";
import { app } from "./socketapi-app.ts";

const token = process.env.ADMIN_TOKEN;
const server = await serve(app, {
  port: Number(process.env.PORT),
  ...(token ? { admin: { token } } : {}),
});
console.log(`listening at ${server.url}`);
