/**
 * Serves a SocketAPI app with `Deno.serve` (and on Deno Deploy) through
 * `Deno.upgradeWebSocket`.
 *
 * @example
 * ```ts
 * import { deno } from "socketapi/deno";
 * import app from "./main.ts";
 *
 * const socketapi = deno(app);
 * const server = Deno.serve({ port: 8000 }, socketapi.fetch);
 * Deno.addSignalListener("SIGTERM", async () => {
 *   await socketapi.shutdown();
 *   await server.shutdown();
 * });
 * ```
 *
 * @module
 */
import {
  BROADCAST_PATH,
  type BroadcastEndpointOptions,
  handleBroadcastRequest,
  isLoopbackAddress,
} from "../src/broadcast-endpoint.ts";
import type { SocketAPI } from "../src/index.ts";
import { keepRequest } from "../src/kept-request.ts";
import type { Session } from "../src/session.ts";
import { closeSessions, serveWebSocket } from "../src/web-socket.ts";

// biome-ignore lint/suspicious/noExplicitAny: any app can be served.
type AnyApp = SocketAPI<any, any, any>;

/** What this runtime can and cannot do, for the cross-runtime suite and the docs. */
export const capabilities = {
  /**
   * `Deno.upgradeWebSocket` has no option to refuse a frame before reading it: every frame
   * is read whole, then one over `maxMessageBytes` gets `MESSAGE_TOO_LARGE`. There is no
   * close with 1009.
   */
  hardFrameLimit: false,
  /** Deno has no pub/sub of its own: broadcasts loop over the subscribers in memory. */
  nativePubSub: false,
  /** `shutdown()` closes every socket with 1001. */
  gracefulShutdown: true,
  /** `maxConnections` refuses upgrades with 503. */
  connectionLimit: true,
  /** Deno pings idle sockets and drops silent ones (`idleTimeout`). */
  deadPeers: true,
  /** A client that stops reading is closed with 1013 at `maxBufferedBytes`. */
  slowConsumers: true,
  /**
   * Deno drops a connection that keeps sending after the server's close frame: a client
   * closed for abuse sees 1006, not 1008.
   */
  cleanCloseUnderFlood: false,
} as const;

/** Options of {@link deno}. */
export interface DenoOptions {
  /** Only upgrades to this path are served (e.g. `/ws`); default: every path. */
  path?: string | undefined;
  /** The broadcast endpoint (`POST /_broadcast`); `false` turns it off. */
  broadcast?: BroadcastEndpointOptions | false | undefined;
}

/** What {@link deno} returns. */
export interface DenoHandler {
  /** The request handler: `Deno.serve(options, handler.fetch)`, or `export default handler`. */
  fetch(request: Request, info?: Deno.ServeHandlerInfo): Promise<Response>;
  /** Closes the sockets it accepted with 1001 and waits for them (at most `timeout` ms). */
  shutdown(options?: { timeout?: number | undefined }): Promise<void>;
}

/**
 * Upgrades a request to a SocketAPI connection on Deno, after `onConnect` admitted it.
 * Returns the response to send: the 101 upgrade, or the refusal.
 */
export async function upgrade(
  app: AnyApp,
  request: Request,
  sessions?: Set<Session<object>>,
): Promise<Response> {
  const admission = await app.admit({ url: request.url, headers: request.headers });
  if (!admission.ok) return admission.response;
  // Deno's request is unusable once upgraded: the connection keeps a copy for handlers.
  const kept = keepRequest(request);
  // Deno pings the socket and closes it when no pong comes back within `idleTimeout`.
  const { socket, response } = Deno.upgradeWebSocket(request, { idleTimeout: app.idleTimeout });
  const session = serveWebSocket(app, socket, kept, admission.state);
  if (sessions) {
    sessions.add(session);
    void session.whenClosed().then(() => sessions.delete(session));
  }
  return response;
}

/**
 * A `Deno.serve` handler for `app`: WebSocket upgrades (after `onConnect`), the broadcast
 * endpoint, and `426 Upgrade Required` for other requests.
 *
 * @example
 * ```ts
 * // main.ts, run with `deno serve -A main.ts` or deployed on Deno Deploy
 * export default deno(app);
 * ```
 */
export function deno(app: AnyApp, options: DenoOptions = {}): DenoHandler {
  const broadcastOptions = options.broadcast === false ? undefined : (options.broadcast ?? {});
  const broadcastPath = broadcastOptions?.path ?? BROADCAST_PATH;
  const sessions = new Set<Session<object>>();
  let stopping = false;
  return {
    async fetch(request, info) {
      const path = new URL(request.url).pathname;
      if (broadcastOptions && path === broadcastPath) {
        const address = info?.remoteAddr.transport === "tcp" ? info.remoteAddr.hostname : undefined;
        const fromLoopback = isLoopbackAddress(address);
        return handleBroadcastRequest(app, request, { fromLoopback, options: broadcastOptions });
      }
      if (options.path !== undefined && path !== options.path) {
        return new Response("Not Found", { status: 404 });
      }
      if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        return new Response("This is a WebSocket endpoint: connect with a WebSocket client.\n", {
          status: 426,
          headers: { upgrade: "websocket" },
        });
      }
      if (stopping) return new Response("Server shutting down", { status: 503 });
      return upgrade(app, request, sessions);
    },
    async shutdown({ timeout = 5000 } = {}) {
      stopping = true;
      await closeSessions(sessions, timeout);
    },
  };
}
