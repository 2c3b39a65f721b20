/**
 * The seed example inside a Hono app: the SocketAPI app on `/`, next to plain HTTP routes
 * and the middleware a real app has (CORS, a logger). Served by `hono-node.ts` (Node) and
 * `hono-bun.ts` (Bun).
 */
import { Hono } from "hono";
import { cors } from "hono/cors";
import { logger } from "hono/logger";
import { socketapi } from "socketapi/hono";
import app from "./main.ts";

const hono = new Hono();
hono.use("*", logger());
hono.use("/api/*", cors());
hono.get("/health", (c) => c.json({ ok: true, connections: app.connections.size }));
hono.post("/api/announce", async (c) => {
  const { message } = await c.req.json<{ message: string }>();
  const delivered = await app.channels.chat({ message });
  return c.json({ delivered });
});
hono.get("/", socketapi(app));

export default hono;
