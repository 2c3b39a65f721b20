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
  type AnyApp,
  closeAdmin,
  closeFallbackSessions,
  closeSessions,
  isLoopbackAddress,
  type RoutingOptions,
  routeFetch,
  runtimeUpgradeWebSocket,
  type Session,
  startAdmin,
  type UpgradeWebSocket,
  upgradeToWebSocket,
} from "../src/adapter.ts";

/** What this runtime can and cannot do, for the cross-runtime suite and the docs. */
export { denoCapabilities as capabilities } from "./capabilities.ts";

// --- Options ---

/**
 * What `Deno.serve` tells a handler of the connection (`Deno.ServeHandlerInfo`), as far as
 * the adapter reads it: written out, so that the types need no Deno declarations.
 */
export interface ServeInfo {
  readonly remoteAddr: { readonly transport: string; readonly hostname?: string };
}

/** Options of {@link deno}: the kit's `path`, `broadcast` and `docs` (`RoutingOptions`). */
export interface DenoOptions extends RoutingOptions {}

/** What {@link deno} returns. */
export interface DenoHandler {
  /** The request handler: `Deno.serve(options, handler.fetch)`, or `export default handler`. */
  fetch(request: Request, info?: ServeInfo): Promise<Response>;
  /** Closes the sockets it accepted with 1001 and waits for them (at most `timeout` ms). */
  shutdown(options?: { timeout?: number | undefined }): Promise<void>;
}

// --- Upgrades ---

/**
 * `Deno.upgradeWebSocket`, read from the global when called (the kit's
 * `runtimeUpgradeWebSocket`): Deno pings the socket and closes it when no pong comes back
 * within `idleTimeout`.
 */
const upgradeWebSocket: UpgradeWebSocket = (request, options) => {
  const upgradeHere = runtimeUpgradeWebSocket();
  if (!upgradeHere) throw new Error("socketapi/deno: this runtime has no Deno.upgradeWebSocket.");
  return upgradeHere(request, options);
};

/**
 * Upgrades a request to a SocketAPI connection on Deno, after `onConnect` admitted it.
 * Returns the response to send: the 101 upgrade, or the refusal.
 */
export function upgrade(
  app: AnyApp,
  request: Request,
  sessions?: Set<Session<object>>,
): Promise<Response> {
  if (!sessions) return upgradeToWebSocket(app, request, upgradeWebSocket);
  return upgradeToWebSocket(
    app,
    request,
    upgradeWebSocket,
    (session) => sessions.add(session),
    (session) => sessions.delete(session),
  );
}

// --- Serving ---

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
  // The dashboard hears the other instances from the start (a wrong token throws here).
  void startAdmin(app, options.admin);
  let stopping = false;
  return {
    async fetch(request, info) {
      return routeFetch(app, request, {
        path: options.path,
        broadcast: options.broadcast,
        docs: options.docs,
        fallback: options.fallback,
        admin: options.admin,
        fromLoopback: () =>
          isLoopbackAddress(
            info?.remoteAddr.transport === "tcp" ? info.remoteAddr.hostname : undefined,
          ),
        stopping: () => stopping,
        upgrade: (target) => upgrade(target ?? app, request, sessions),
      });
    },
    async shutdown({ timeout } = {}) {
      stopping = true;
      if (options.fallback) await closeFallbackSessions(app);
      if (options.admin) await closeAdmin(app, timeout);
      await closeSessions(sessions, timeout);
    },
  };
}
