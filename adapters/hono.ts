/**
 * Hono middleware: `hono.get(path, socketapi(app))` serves a SocketAPI app on any route of
 * a Hono app, while its other routes keep serving HTTP. The upgrade request goes through
 * Hono's routing and middleware like any other; the connection is then handed to the
 * runtime's own adapter:
 *
 * - Bun: `Bun.serve({ fetch: hono.fetch, websocket })`, with `websocket` from `socketapi/bun`
 *   (broadcasts use Bun's topics);
 * - Deno: `Deno.serve(hono.fetch)`, nothing else to wire;
 * - Node (`@hono/node-server`): `injectWebSocket(server, hono)` from `socketapi/node`;
 * - Cloudflare Workers: `cloudflare(app)` from `socketapi/cloudflare` (its Durable Object
 *   holds the connections; export it as usual).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { socketapi } from "socketapi/hono";
 * import app from "./main.ts";
 *
 * const hono = new Hono().get("/health", (c) => c.text("ok")).get("/", socketapi(app));
 * ```
 *
 * `docs(app)` serves the docs page and the AsyncAPI document on routes of your choice.
 *
 * @module
 */

import type { Context, Handler, MiddlewareHandler } from "hono";
import type { AnyApp } from "../src/adapter.ts";
import {
  ASYNCAPI_PATH,
  type BroadcastEndpointOptions,
  type DocsOptions,
  handleBroadcastRequest,
  handleDocsRequest,
  isLoopbackAddress,
  peerAddressOf,
  runtimeUpgradeWebSocket,
  upgradeToWebSocket,
  upgradeWhereServed,
} from "../src/adapter.ts";

// --- Upgrades ---

/**
 * The middleware. A request that is not a WebSocket upgrade goes on to the next handler
 * (so a page can share the path); an upgrade goes through the app's `onConnect` and
 * becomes a connection. On a runtime it cannot serve, it answers 501 and says why.
 *
 * @example
 * ```ts
 * const hono = new Hono();
 * hono.use("*", logger());
 * hono.get("/ws", socketapi(app));
 * ```
 */
export function socketapi(app: AnyApp): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") return next();
    const request = c.req.raw;
    // Workers (the app's Durable Object), Bun (its server is `env`) and Node (the handoff
    // `injectWebSocket` puts in `env`): each adapter registered how it accepts upgrades.
    const upgraded = upgradeWhereServed(app, request, c.env);
    if (upgraded) return upgraded;
    // Deno: its global upgrade (Hono on Deno needs no adapter of ours).
    const deno = runtimeUpgradeWebSocket();
    if (deno) return upgradeToWebSocket(app, request, deno);
    return c.text(
      "socketapi/hono: no WebSocket support found. On Bun pass `websocket` from socketapi/bun " +
        "to Bun.serve; on Node call injectWebSocket(server, hono) from socketapi/node; on " +
        "Workers call cloudflare(app) from socketapi/cloudflare.",
      501,
    );
  };
}

// --- Broadcast endpoint ---

/**
 * The peer's address: as the adapter of the runtime Hono runs on says it (Node's and Bun's
 * register how), else Deno's `ServeHandlerInfo`, which Hono on Deno passes as `env`.
 */
function remoteAddress(c: Context): string | undefined {
  return (
    peerAddressOf(c.req.raw, c.env) ??
    (c.env as { remoteAddr?: { hostname?: string } } | undefined)?.remoteAddr?.hostname
  );
}

/**
 * The broadcast endpoint as a Hono handler: `hono.post("/_broadcast", broadcast(app))`.
 * Loopback callers are trusted (on Node, Bun and Deno, where Hono passes the peer's
 * address); others need `Authorization: Bearer TOKEN` when `options.token` is set.
 *
 * @example
 * ```ts
 * hono.post("/_broadcast", broadcast(app, { token: process.env.BROADCAST_TOKEN }));
 * ```
 */
export function broadcast(app: AnyApp, options: BroadcastEndpointOptions = {}): Handler {
  return (c) =>
    handleBroadcastRequest(app, c.req.raw, {
      fromLoopback: isLoopbackAddress(remoteAddress(c)),
      options,
    });
}

// --- Docs ---

/**
 * The docs page and the AsyncAPI document as a Hono handler: mount it on both paths. It
 * answers the document on `asyncapiPath` (default `/asyncapi.json`) and the page elsewhere;
 * `socket` is the path the page opens its WebSocket on (where `socketapi(app)` is mounted).
 *
 * @example
 * ```ts
 * const handler = docs(app, { socket: "/ws" });
 * hono.get("/docs", handler).get("/asyncapi.json", handler).get("/ws", socketapi(app));
 * ```
 */
export function docs(app: AnyApp, options: DocsOptions = {}): Handler {
  const { socket = "/", ...served } = options;
  return (c) => {
    const path = new URL(c.req.url).pathname;
    const route = path === (served.asyncapiPath ?? ASYNCAPI_PATH) ? "asyncapi" : "docs";
    return handleDocsRequest(app, route, c.req.raw, served, socket);
  };
}
