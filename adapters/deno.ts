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
import { type BroadcastEndpointOptions, isLoopbackAddress } from "../src/broadcast-endpoint.ts";
import { routeFetch } from "../src/fetch-route.ts";
import type { SocketAPI } from "../src/index.ts";
import { keepRequest } from "../src/kept-request.ts";
import type { Session } from "../src/session.ts";
import { closeSessions, serveWebSocket } from "../src/web-socket.ts";

// biome-ignore lint/suspicious/noExplicitAny: any app can be served.
type AnyApp = SocketAPI<any, any, any>;

/** What this runtime can and cannot do, for the cross-runtime suite and the docs. */
export { denoCapabilities as capabilities } from "./capabilities.ts";

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
  const { socket, response } = Deno.upgradeWebSocket(request, {
    idleTimeout: app.limits.idleTimeout,
  });
  const session = serveWebSocket(app, socket, kept, admission.state, admission.slot);
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
  const sessions = new Set<Session<object>>();
  let stopping = false;
  return {
    async fetch(request, info) {
      return routeFetch(app, request, {
        path: options.path,
        broadcast: options.broadcast,
        fromLoopback: () =>
          isLoopbackAddress(
            info?.remoteAddr.transport === "tcp" ? info.remoteAddr.hostname : undefined,
          ),
        stopping: () => stopping,
        upgrade: () => upgrade(app, request, sessions),
      });
    },
    async shutdown({ timeout = 5000 } = {}) {
      stopping = true;
      await closeSessions(sessions, timeout);
    },
  };
}
