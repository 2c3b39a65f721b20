import { adminAppFor, answerAdmin } from "../admin/admin-kit.ts";
import { type AdminOptions, isAdminPath } from "../admin/admin-options.ts";
import type { AnyApp, SocketAPI } from "../app.ts";
import {
  BROADCAST_PATH,
  type BroadcastEndpointOptions,
  handleBroadcastRequest,
} from "./broadcast-endpoint.ts";
import { type DocsOptions, docsOptions, docsRouteOf, handleDocsRequest } from "./docs-endpoint.ts";
import { fallbackRouteOf, handleFallbackRequest } from "./fallback/fallback-endpoint.ts";

/**
 * What becomes of one request to a server that serves an app: the one table every adapter
 * answers by, checked in this order.
 *
 * | route              | when                                              | answer |
 * | ------------------ | ------------------------------------------------- | ------ |
 * | `broadcast`        | the broadcast endpoint's path (unless turned off) | the endpoint's |
 * | `admin`            | not an upgrade, the dashboard's path (`admin` on) | the page, or 401 |
 * | `admin-upgrade`    | an upgrade on the dashboard's path (`admin` on)   | its socket (503 when shutting down) |
 * | `docs`             | not an upgrade, the docs page's path (`docs` on)  | the page |
 * | `asyncapi`         | not an upgrade, the document's path (`docs` on)   | the AsyncAPI document |
 * | `not-found`        | a `path` is set and this is another path          | 404 |
 * | `fallback-stream`  | `fallback` on, a GET that accepts text/event-stream | `onConnect`, then the session's events |
 * | `fallback-post`    | `fallback` on, a POST with `?session=`            | 204 (fed), 202 (sent on), 404 |
 * | `upgrade-required` | not a WebSocket upgrade                           | 426 |
 * | `shutting-down`    | the server is shutting down                       | 503 |
 * | `upgrade`          | a WebSocket upgrade                               | `onConnect`, then 101 |
 */
export type RequestRoute =
  | "broadcast"
  | "admin"
  | "admin-upgrade"
  | "docs"
  | "asyncapi"
  | "not-found"
  | "fallback-stream"
  | "fallback-post"
  | "upgrade-required"
  | "shutting-down"
  | "upgrade";

/** How an adapter was told to serve: its path and its broadcast endpoint. */
export interface RoutingOptions {
  /** Only upgrades to this path are served; default: every path. */
  path?: string | undefined;
  /** The broadcast endpoint's options; `false` turns it off. */
  broadcast?: BroadcastEndpointOptions | false | undefined;
  /** The docs page and the AsyncAPI document (`/docs`, `/asyncapi.json`); off by default. */
  docs?: DocsOptions | boolean | undefined;
  /**
   * Server-Sent Events and POST for clients whose network lets no WebSocket through (the
   * typed client's `fallback`), on the same path; off by default. Sessions work across
   * instances over the app's relay, without sticky sessions (docs/transports.md).
   */
  fallback?: boolean | undefined;
  /**
   * The live dashboard (`/admin`, docs/dashboard.md): a page and its socket on this server,
   * for whoever has the token; off by default.
   */
  admin?: AdminOptions | undefined;
}

/** What the table reads of a plain (not upgrade) request, for the fallback's routes. */
export interface PlainRequest {
  readonly method: string;
  readonly accept: string | null | undefined;
  /** The URL's query, with its `?`. */
  readonly search: string;
}

/** The broadcast endpoint's options, or `undefined` when it is turned off. */
export function broadcastOptions(options: RoutingOptions): BroadcastEndpointOptions | undefined {
  return options.broadcast === false ? undefined : (options.broadcast ?? {});
}

/** Whether a request's `Upgrade` header asks for a WebSocket. */
export function isWebSocketUpgrade(upgrade: string | null | undefined): boolean {
  return upgrade?.toLowerCase() === "websocket";
}

/** Where a request goes, by the table above. */
export function routeRequest(
  path: string,
  upgrade: boolean,
  options: RoutingOptions,
  stopping: boolean,
  plain?: PlainRequest,
): RequestRoute {
  const broadcast = broadcastOptions(options);
  if (broadcast && path === (broadcast.path ?? BROADCAST_PATH)) return "broadcast";
  if (isAdminPath(path, options.admin)) {
    if (!upgrade) return "admin";
    return stopping ? "shutting-down" : "admin-upgrade";
  }
  const docs = upgrade ? undefined : docsRouteOf(path, docsOptions(options.docs));
  if (docs) return docs;
  if (options.path !== undefined && path !== options.path) return "not-found";
  if (!upgrade && options.fallback && plain) {
    const fallback = fallbackRouteOf(plain.method, plain.accept, plain.search);
    if (fallback === "fallback-stream" && stopping) return "shutting-down";
    if (fallback) return fallback;
  }
  if (!upgrade) return "upgrade-required";
  if (stopping) return "shutting-down";
  return "upgrade";
}

/** The answer of a route that refuses: 404, 426 or 503. */
export function refusalOf(
  route:
    | "not-found"
    | "upgrade-required"
    | "shutting-down"
    | "too-many-connections"
    | "too-many-connects",
): Response {
  switch (route) {
    case "not-found":
      return new Response("Not Found\n", { status: 404 });
    case "upgrade-required":
      return upgradeRequired();
    case "shutting-down":
      return new Response("Server shutting down\n", { status: 503 });
    case "too-many-connections":
      return new Response("Too many connections", { status: 503 });
    case "too-many-connects":
      return new Response("Too many connections at once: try again", {
        status: 503,
        headers: { "retry-after": "1" },
      });
  }
}

/** The answer to a plain HTTP request on a WebSocket endpoint: 426 Upgrade Required. */
export function upgradeRequired(): Response {
  return new Response("This is a WebSocket endpoint: connect with a WebSocket client.\n", {
    status: 426,
    headers: { upgrade: "websocket" },
  });
}

/** How a fetch-style adapter (Bun, Deno) answers the requests of its server. */
export interface FetchRoute<Upgraded extends Response | undefined> extends RoutingOptions {
  /** Whether the request comes from the loopback network (asked only for broadcasts). */
  fromLoopback(): boolean;
  /** Whether the server is shutting down: upgrades are then refused with 503. */
  stopping(): boolean;
  /**
   * Upgrades the request for `app` (the served app; the dashboard's for its socket);
   * `undefined` when the runtime answers it itself (Bun).
   */
  upgrade(app?: AnyApp): Promise<Upgraded>;
}

/** Answers one request of a fetch-style server by the table. */
export function routeFetch<Upgraded extends Response | undefined>(
  // biome-ignore lint/suspicious/noExplicitAny: any app can be served.
  app: SocketAPI<any, any, any>,
  request: Request,
  route: FetchRoute<Upgraded>,
): Promise<Response | Upgraded> | Response {
  const url = new URL(request.url);
  const upgrade = isWebSocketUpgrade(request.headers.get("upgrade"));
  const where = routeRequest(url.pathname, upgrade, route, route.stopping(), {
    method: request.method,
    accept: request.headers.get("accept"),
    search: url.search,
  });
  switch (where) {
    case "broadcast":
      return handleBroadcastRequest(app, request, {
        fromLoopback: route.fromLoopback(),
        options: broadcastOptions(route) ?? {},
      });
    case "docs":
    case "asyncapi":
      return handleDocsRequest(app, where, request, docsOptions(route.docs) ?? {}, route.path);
    case "admin":
      return answerAdmin(app, request, route.admin as AdminOptions, titleOf(route));
    case "admin-upgrade":
      return adminAppFor(app, route.admin as AdminOptions).then((admin) => route.upgrade(admin));
    case "upgrade":
      return route.upgrade();
    case "fallback-stream":
    case "fallback-post":
      return handleFallbackRequest(app, where, request);
    default:
      return refusalOf(where);
  }
}

/** The title the dashboard shows: the docs' title when they have one. */
export function titleOf(options: RoutingOptions): string {
  const docs = docsOptions(options.docs);
  return docs?.asyncapi?.title ?? "SocketAPI";
}
