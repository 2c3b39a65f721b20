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

import type { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  admitUpgrade,
  BROADCAST_PATH,
  type BroadcastEndpointOptions,
  broadcastOptions,
  type DocsOptions,
  docsOptions,
  handleDocsRequest,
  refusalOf,
  registerRuntimeUpgrader,
  reportToApp,
  routeRequest,
  type UpgradeRequest,
} from "../src/adapter.ts";
import type { SocketAPI } from "../src/index.ts";
import {
  answerBroadcast,
  pathOf,
  requestUrl,
  sendResponse,
  toHeaders,
  upgradeRequest,
} from "./node/http.ts";
import { decision, handleUpgrades, type UpgradeDecision } from "./node/upgrades.ts";

// biome-ignore lint/suspicious/noExplicitAny: any app can be served.
type AnyApp = SocketAPI<any, any, any>;

/** What this runtime can and cannot do, for the cross-runtime suite and the docs. */
export { nodeCapabilities as capabilities } from "./capabilities.ts";

// --- Options ---

/** Options of {@link attach}. */
export interface AttachOptions {
  /** Only upgrades to this path are served (e.g. `/ws`); default: every path. */
  path?: string | undefined;
  /**
   * Frames above this many bytes make `ws` close the socket with 1009 instead of reading
   * them; default four times the app's `maxMessageBytes`. Frames between the two get the
   * `MESSAGE_TOO_LARGE` error frame and the connection stays open.
   */
  maxPayload?: number | undefined;
  /**
   * With `path`: how long an upgrade to another path waits for another `upgrade` listener
   * of the server to take it before it is answered 404, in ms (default 10,000). When the
   * app is the server's only upgrade listener, such upgrades are answered 404 at once.
   */
  unclaimedTimeout?: number | undefined;
}

/** Options of {@link serve}. */
export interface ServeOptions extends AttachOptions {
  /** The port; default 8000. `0` picks a free one (read it from `server.port`). */
  port?: number | undefined;
  /** The interface to listen on; default `127.0.0.1`. Use `0.0.0.0` to accept from the network. */
  host?: string | undefined;
  /** The broadcast endpoint (`POST /_broadcast`); `false` turns it off. */
  broadcast?: BroadcastEndpointOptions | false | undefined;
  /**
   * Serve the docs page (`/docs`) and the AsyncAPI document (`/asyncapi.json`): `true`, or
   * their paths and the document's title (docs/asyncapi.md). Off by default.
   */
  docs?: DocsOptions | boolean | undefined;
}

/** Options of a graceful shutdown. */
export interface CloseOptions {
  /**
   * How long frames already taken get to be answered before sockets are closed with 1001,
   * in ms (default 5000). Sockets that then do not finish the close handshake within two
   * seconds are cut off.
   */
  timeout?: number | undefined;
}

/** A running attachment of an app to an `http.Server`. */
export interface Attachment {
  /** Refuses new upgrades, closes open sockets with 1001 and resolves when they are closed. */
  close(options?: CloseOptions): Promise<void>;
}

/** A running server made by {@link serve}. */
export interface NodeServer extends Attachment {
  /** The underlying HTTP server. */
  readonly server: Server;
  /** The port it listens on. */
  readonly port: number;
  /** The WebSocket URL of the app, e.g. `ws://127.0.0.1:8000/`. */
  readonly url: string;
}

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
  return attachRouted(app, server, options, false);
}

/** `attach`, routing upgrades by the one table (with the broadcast endpoint, for `serve`). */
function attachRouted(
  app: AnyApp,
  server: Server,
  options: AttachOptions,
  broadcast: BroadcastEndpointOptions | false | undefined,
): Attachment {
  return handleUpgrades(
    server,
    (req) => {
      const route = routeRequest(pathOf(req), true, { path: options.path, broadcast }, false);
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
      const admission = admitUpgrade(app, request);
      return admission instanceof Promise
        ? admission.then((settled) => decision(app, request, settled))
        : decision(app, request, admission);
    },
    () => options.maxPayload ?? app.limits.maxMessageBytes * 4,
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
  const server = createServer((req, res) => {
    void (async () => {
      const route = routeRequest(pathOf(req), false, options, false);
      const response =
        route === "broadcast"
          ? await answerBroadcast(app, req, broadcastOptions(options) ?? {})
          : route === "docs" || route === "asyncapi"
            ? await handleDocsRequest(
                app,
                route,
                { url: upgradeRequest(req).url, method: req.method ?? "GET" },
                docsOptions(options.docs) ?? {},
                options.path,
              )
            : refusalOf(route === "upgrade" ? "upgrade-required" : route);
      await sendResponse(req, res, response);
    })().catch((error: unknown) => {
      reportToApp(app, error, { phase: "broadcast" });
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  // A relay that cannot connect fails the start, saying why.
  await app.ready();
  const attachment = attachRouted(app, server, options, options.broadcast);
  const { path } = options;
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8000, host, () => {
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

export {
  type ClusterRoutingOptions,
  clusterRelay,
  routeClusterBroadcasts,
} from "./node/cluster.ts";

// --- Hono ---

/** Where `injectWebSocket` puts its upgrade callback in Hono's `env`, for the middleware. */
const NODE_UPGRADE: unique symbol = Symbol.for("socketapi.node-upgrade");

/** Accepts an upgrade on Node for `app`: returns the refusal, or a marker response. */
type NodeUpgrade = (app: AnyApp, request: UpgradeRequest) => Promise<Response>;

// Hono's middleware accepts an upgrade on Node through the callback in its `env`.
registerRuntimeUpgrader((app, request, env) => {
  const upgrade = (env as { [NODE_UPGRADE]?: NodeUpgrade } | undefined)?.[NODE_UPGRADE];
  return upgrade?.(app, { url: request.url, headers: request.headers });
});

/** A Hono app, as far as {@link injectWebSocket} needs it. */
export interface FetchApp {
  fetch(request: Request, env?: unknown): Response | Promise<Response>;
}

/**
 * Routes the upgrade requests of a Node server made by `@hono/node-server` through a Hono
 * app, so that `hono.get(path, socketapi(app))` can accept them: Hono's routing and
 * middleware (auth, logger, CORS) run for the upgrade as for any request, and whatever
 * Hono answers instead of an upgrade (401, 404) is sent to the client.
 *
 * @example
 * ```ts
 * import { serve } from "@hono/node-server";
 * import { Hono } from "hono";
 * import { socketapi } from "socketapi/hono";
 * import { injectWebSocket } from "socketapi/node";
 *
 * const hono = new Hono().get("/", socketapi(app));
 * const server = serve({ fetch: hono.fetch, port: 8000 });
 * injectWebSocket(server, hono);
 * ```
 */
export function injectWebSocket(
  server: EventEmitter,
  hono: FetchApp,
  options: Pick<AttachOptions, "maxPayload"> = {},
): Attachment {
  return handleUpgrades(
    server,
    async (req) => {
      let accepted: UpgradeDecision | undefined;
      const upgrade: NodeUpgrade = async (app, request) => {
        const admission = await admitUpgrade(app, request);
        if (!admission.ok) return admission.response;
        accepted = {
          kind: "accept",
          app,
          request,
          state: admission.state,
          slot: admission.slot,
        };
        return new Response(null, { status: 200, headers: { "x-socketapi-upgrade": "accepted" } });
      };
      const request = new Request(requestUrl(req.url ?? "/", req.headers.host), {
        headers: toHeaders(req.headers),
      });
      const env = { incoming: req, outgoing: undefined, [NODE_UPGRADE]: upgrade };
      const response = await hono.fetch(request, env);
      return accepted ?? { kind: "refuse", response };
    },
    (app) => options.maxPayload ?? app.limits.maxMessageBytes * 4,
  );
}
