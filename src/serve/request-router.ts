import type { SocketAPI } from "../app.ts";
import {
  BROADCAST_PATH,
  type BroadcastEndpointOptions,
  handleBroadcastRequest,
} from "./broadcast-endpoint.ts";

/** The answer to a plain HTTP request on a WebSocket endpoint. */
export function upgradeRequired(): Response {
  return new Response("This is a WebSocket endpoint: connect with a WebSocket client.\n", {
    status: 426,
    headers: { upgrade: "websocket" },
  });
}

/** How a fetch-style adapter (Bun, Deno) answers the requests of its server. */
export interface FetchRoute<Upgraded extends Response | undefined> {
  /** Only upgrades to this path are served; default: every path. */
  path?: string | undefined;
  /** The broadcast endpoint's options; `false` turns it off. */
  broadcast?: BroadcastEndpointOptions | false | undefined;
  /** Whether the request comes from the loopback network (asked only for broadcasts). */
  fromLoopback(): boolean;
  /** Whether the server is shutting down: upgrades are then refused with 503. */
  stopping(): boolean;
  /** Upgrades the request; `undefined` when the runtime answers it itself (Bun). */
  upgrade(): Promise<Upgraded>;
}

/**
 * Answers one request of a fetch-style server: the broadcast endpoint, 404 off the path,
 * 426 to a request that is not an upgrade, 503 while shutting down, else the upgrade.
 */
export function routeFetch<Upgraded extends Response | undefined>(
  // biome-ignore lint/suspicious/noExplicitAny: any app can be served.
  app: SocketAPI<any, any, any>,
  request: Request,
  route: FetchRoute<Upgraded>,
): Promise<Response | Upgraded> | Response {
  const path = new URL(request.url).pathname;
  const broadcast = route.broadcast === false ? undefined : (route.broadcast ?? {});
  if (broadcast && path === (broadcast.path ?? BROADCAST_PATH)) {
    return handleBroadcastRequest(app, request, {
      fromLoopback: route.fromLoopback(),
      options: broadcast,
    });
  }
  if (route.path !== undefined && path !== route.path) {
    return new Response("Not Found", { status: 404 });
  }
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") return upgradeRequired();
  if (route.stopping()) return new Response("Server shutting down", { status: 503 });
  return route.upgrade();
}
