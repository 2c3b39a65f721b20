/**
 * Serves a SocketAPI app on Node with the `ws` package: on its own port (`serve`) or on an
 * existing `http.Server` (`attach`).
 *
 * @example
 * ```ts
 * import { serve } from "socketapi/node";
 * import app from "./main.ts";
 *
 * const server = await serve(app, { port: 8000 });
 * process.on("SIGTERM", () => server.close());
 * ```
 *
 * @module
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { AnyApp } from "../src/adapter.ts";
import {
  type AdminOptions,
  adminAppFor,
  admitUpgrade,
  answerAdmin,
  BROADCAST_PATH,
  type BroadcastEndpointOptions,
  broadcastOptions,
  closeAdmin,
  closeFallbackSessions,
  docsOptions,
  handleDocsRequest,
  handleFallbackRequest,
  refusalOf,
  reportToApp,
  routeRequest,
  startAdmin,
  titleOf,
} from "../src/adapter.ts";
import { answerBroadcast, pathOf, sendResponse, upgradeRequest, webRequest } from "./node/http.ts";
import type {
  Attachment,
  AttachOptions,
  CloseOptions,
  NodeServer,
  ServeOptions,
} from "./node/options.ts";
import { decision, handleUpgrades } from "./node/upgrades.ts";

/** The listen backlog of `serve`, where Node's own is 511 (see `ServeOptions.backlog`). */
const DEFAULT_BACKLOG = 4096;

/** What this runtime can and cannot do, for the cross-runtime suite and the docs. */
export { nodeCapabilities as capabilities } from "./capabilities.ts";

// --- Options ---

export type {
  Attachment,
  AttachOptions,
  CloseOptions,
  NodeServer,
  ServeOptions,
} from "./node/options.ts";

// --- Upgrades ---
// Sockets are in node/socket.ts, the upgrade handshake in node/upgrades.ts.

/**
 * Serves `app` on an existing HTTP server: upgrades on `options.path` (or every path) go
 * through `onConnect`, then become connections. Other requests are left to the server.
 *
 * @example
 * ```ts
 * import { createServer } from "node:http";
 * import { attach } from "socketapi/node";
 *
 * const server = createServer((req, res) => res.end("hello"));
 * const ws = attach(app, server, { path: "/ws" });
 * server.listen(8000, "127.0.0.1");
 * ```
 */
export function attach(app: AnyApp, server: Server, options: AttachOptions = {}): Attachment {
  return attachRouted(app, server, options, false, undefined);
}

/** `attach`, routing upgrades by the one table (with the broadcast endpoint, for `serve`). */
function attachRouted(
  app: AnyApp,
  server: Server,
  options: AttachOptions,
  broadcast: BroadcastEndpointOptions | false | undefined,
  admin: AdminOptions | undefined,
): Attachment {
  return handleUpgrades(
    server,
    (req) => {
      const route = routeRequest(
        pathOf(req),
        true,
        { path: options.path, broadcast, admin },
        false,
      );
      // Another path is another listener's, if the server has one.
      if (route === "not-found") return { kind: "ignore" };
      if (route === "broadcast") {
        return answerBroadcast(app, req, broadcastOptions({ broadcast }) ?? {}).then(
          (response) => ({
            kind: "refuse",
            response,
          }),
        );
      }
      const request = upgradeRequest(req);
      if (route === "admin-upgrade") {
        // The dashboard's socket, admitted (its token checked) by the dashboard's own app.
        return adminAppFor(app, admin as AdminOptions).then(async (served) =>
          decision(served, await admitUpgrade(served, request)),
        );
      }
      const admission = admitUpgrade(app, request);
      return admission instanceof Promise
        ? admission.then((settled) => decision(app, settled))
        : decision(app, admission);
    },
    () => options.maxPayload ?? app.limits.maxFrameBytes,
    options.unclaimedTimeout,
  );
}

// --- Broadcast endpoint ---

/**
 * The broadcast endpoint as a Node request handler, for servers made without `serve`. It
 * resolves `true` when it answered the request (its path matched), else `false`.
 *
 * @example
 * ```ts
 * const broadcast = broadcastHandler(app, { token: process.env.BROADCAST_TOKEN });
 * const server = createServer(async (req, res) => {
 *   if (await broadcast(req, res)) return;
 *   res.end("hello");
 * });
 * ```
 */
export function broadcastHandler(
  app: AnyApp,
  options: BroadcastEndpointOptions = {},
): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const path = options.path ?? BROADCAST_PATH;
  return async (req, res) => {
    if (pathOf(req) !== path) return false;
    await sendResponse(req, res, await answerBroadcast(app, req, options));
    return true;
  };
}

// --- Serving ---

/**
 * Serves `app` on its own port: WebSocket upgrades on every path (or `options.path`), the
 * broadcast endpoint, and `426 Upgrade Required` for other requests. Connects the app's
 * relay first (rejecting, saying why, when it cannot), then resolves once listening;
 * `close()` shuts down gracefully, then stops the relay.
 *
 * @example
 * ```ts
 * const server = await serve(app, { port: 8000 });
 * console.log(`listening on ${server.url}`);
 * await server.close(); // closes sockets with 1001, then the server
 * ```
 */
export async function serve(app: AnyApp, options: ServeOptions = {}): Promise<NodeServer> {
  // Plain HTTP requests, by the one table: the broadcast endpoint, 404 off the path, 426.
  let stopping = false;
  const server = createServer((req, res) => {
    void (async () => {
      const url = req.url ?? "/";
      const query = url.indexOf("?");
      const route = routeRequest(pathOf(req), false, options, stopping, {
        method: req.method ?? "GET",
        accept: req.headers.accept,
        search: query === -1 ? "" : url.slice(query),
      });
      if (route === "fallback-stream" || route === "fallback-post") {
        await sendResponse(req, res, await handleFallbackRequest(app, route, webRequest(req)));
        return;
      }
      const response =
        route === "admin"
          ? await answerAdmin(app, webRequest(req), options.admin as AdminOptions, titleOf(options))
          : route === "broadcast"
            ? await answerBroadcast(app, req, broadcastOptions(options) ?? {})
            : route === "docs" || route === "asyncapi"
              ? await handleDocsRequest(
                  app,
                  route,
                  { url: upgradeRequest(req).url, method: req.method ?? "GET" },
                  docsOptions(options.docs) ?? {},
                  options.path,
                )
              : refusalOf(
                  route === "upgrade" || route === "admin-upgrade" ? "upgrade-required" : route,
                );
      await sendResponse(req, res, response);
    })().catch((error: unknown) => {
      reportToApp(app, error, { phase: "broadcast" });
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  // A relay that cannot connect fails the start, saying why.
  await app.ready();
  await startAdmin(app, options.admin);
  const attachment = attachRouted(app, server, options, options.broadcast, options.admin);
  const { path } = options;
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8000, host, options.backlog ?? DEFAULT_BACKLOG, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    server,
    port,
    url: `ws://${urlHost}:${port}${path ?? "/"}`,
    async close(closeOptions?: CloseOptions): Promise<void> {
      stopping = true;
      await closeFallbackSessions(app);
      if (options.admin) await closeAdmin(app, closeOptions?.timeout);
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await attachment.close(closeOptions);
      server.closeAllConnections();
      await stopped;
      await app.closeRelay();
    },
  };
}

// --- Relays ---

// node:cluster's workers as a relay, like the brokers' (relays/cluster.ts).
export {
  type ClusterRoutingOptions,
  clusterRelay,
  routeClusterBroadcasts,
} from "../relays/cluster.ts";

// --- Hono ---

// Hono's middleware reaches Node through injectWebSocket's callback (node/hono-bridge.ts).
export { type FetchApp, injectWebSocket } from "./node/hono-bridge.ts";
