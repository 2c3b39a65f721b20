/**
 * The seed example inside a Hono app: the SocketAPI app on `/`, next to plain HTTP routes
 * and the middleware a real app has (a logger, bearer auth). Served by `hono-node.ts`
 * (Node) and `hono-bun.ts` (Bun).
 *
 * `POST /api/announce` broadcasts to the chat from another program. It is guarded the way
 * any route that acts for the server must be: a bearer token (`ANNOUNCE_TOKEN`; without
 * it the route refuses everyone), no CORS (a page of another site must not call it), and
 * a validated JSON body (a malformed one is a 400, never a 500).
 */
import { Hono } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { logger } from "hono/logger";
import { socketapi } from "socketapi/hono";
import * as v from "valibot";
import app from "./main.ts";

const Announcement = v.object({ message: v.pipe(v.string(), v.maxLength(1000)) });
const token = process.env.ANNOUNCE_TOKEN;

const hono = new Hono();
hono.use("*", logger());
hono.get("/health", (c) => c.json({ ok: true, connections: app.connections.size }));
hono.use("/api/*", async (c, next) => {
  if (!token) return c.json({ error: "Set ANNOUNCE_TOKEN to use this route." }, 403);
  return bearerAuth({ token })(c, next);
});
hono.post("/api/announce", async (c) => {
  const body = await c.req.json().catch(() => undefined);
  const parsed = v.safeParse(Announcement, body);
  if (!parsed.success) return c.json({ error: 'Send {"message": string}.' }, 400);
  const delivered = await app.channels.chat({ message: parsed.output.message });
  return c.json({ delivered });
});
hono.get("/", socketapi(app));

export default hono;
