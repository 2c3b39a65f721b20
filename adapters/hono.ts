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
 * @module
 */
import type { Context, Handler, MiddlewareHandler } from "hono";
import {
  type BroadcastEndpointOptions,
  handleBroadcastRequest,
  isLoopbackAddress,
} from "../src/broadcast-endpoint.ts";
import type { SocketAPI, UpgradeRequest } from "../src/index.ts";
import { keepRequest } from "../src/kept-request.ts";
import { upgradeRoute } from "../src/upgrade-route.ts";
import { serveWebSocket } from "../src/web-socket.ts";
import { type SocketData, upgrade as upgradeOnBun } from "./bun.ts";

// biome-ignore lint/suspicious/noExplicitAny: any app can be served.
type AnyApp = SocketAPI<any, any, any>;

/**
 * The key under which `injectWebSocket` (Node) puts its upgrade callback in Hono's `env`.
 * Not for users: the Node adapter and this middleware share it.
 */
export const NODE_UPGRADE: unique symbol = Symbol.for("socketapi.node-upgrade");

/** Accepts an upgrade on Node for `app`: returns the refusal, or a marker response. */
export type NodeUpgrade = (app: AnyApp, request: UpgradeRequest) => Promise<Response>;

/** The part of Bun's server the middleware uses; Hono passes it as `env`. */
interface BunServerLike {
  upgrade(request: Request, options: { data: SocketData }): boolean;
  publish(topic: string, data: string): number;
  requestIP(request: Request): { address: string } | null;
}

/** The part of the `Deno` global the middleware uses. */
interface DenoLike {
  upgradeWebSocket(
    request: Request,
    options?: { idleTimeout?: number },
  ): { socket: WebSocket; response: Response };
}

function isBunServer(env: unknown): env is BunServerLike {
  const candidate = env as Partial<BunServerLike> | undefined;
  return typeof candidate?.upgrade === "function" && typeof candidate.publish === "function";
}

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
    const upgradeRequest: UpgradeRequest = { url: request.url, headers: request.headers };
    const env = c.env as Record<PropertyKey, unknown> | undefined;

    // Cloudflare Workers: the connection lives in a Durable Object (socketapi/cloudflare).
    const route = upgradeRoute(app);
    if (route) return route(request, c.env);

    const nodeUpgrade = env?.[NODE_UPGRADE] as NodeUpgrade | undefined;
    if (nodeUpgrade) return nodeUpgrade(app, upgradeRequest);

    if (isBunServer(env)) {
      // Bun ignores the response of a request it upgraded; Hono needs one.
      return (await upgradeOnBun(app, request, env as never)) ?? new Response(null);
    }

    const deno = (globalThis as { Deno?: Partial<DenoLike> }).Deno;
    if (typeof deno?.upgradeWebSocket === "function") {
      const admission = await app.admit(upgradeRequest);
      if (!admission.ok) return admission.response;
      // Deno's request is unusable once upgraded: the connection keeps a copy for handlers.
      const kept = keepRequest(request);
      const { socket, response } = deno.upgradeWebSocket(request, {
        idleTimeout: app.limits.idleTimeout,
      });
      serveWebSocket(app, socket, kept, admission.state, admission.slot);
      return response;
    }

    return c.text(
      "socketapi/hono: no WebSocket support found. On Bun pass `websocket` from socketapi/bun " +
        "to Bun.serve; on Node call injectWebSocket(server, hono) from socketapi/node; on " +
        "Workers call cloudflare(app) from socketapi/cloudflare.",
      501,
    );
  };
}

/** The peer's address on Node, Bun and Deno, as Hono's runtime bindings carry it. */
function remoteAddress(c: Context): string | undefined {
  const env = c.env as {
    incoming?: { socket?: { remoteAddress?: string } };
    remoteAddr?: { hostname?: string };
  };
  if (env?.incoming?.socket) return env.incoming.socket.remoteAddress;
  if (isBunServer(env)) return env.requestIP(c.req.raw)?.address;
  return env?.remoteAddr?.hostname;
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
