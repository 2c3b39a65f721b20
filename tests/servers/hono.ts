// The conformance app inside a Hono app with middleware on every route and other routes.
import { Hono } from "hono";
import { cors } from "hono/cors";
import { broadcast, docs, socketapi } from "../../adapters/hono.ts";
import app from "./conformance-app.ts";

const hono = new Hono();
hono.use("*", cors());
hono.use("*", async (c, next) => {
  await next();
  c.header("x-served-by", "hono");
});
hono.get("/health", (c) => c.json({ ok: true }));
hono.post("/_broadcast", broadcast(app));
const documentation = docs(app);
hono.get("/docs", documentation);
hono.get("/asyncapi.json", documentation);
hono.get("/", socketapi(app));
hono.get("/room", socketapi(app));

export default hono;
