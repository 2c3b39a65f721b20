// Hono on Node: `injectWebSocket(server, hono)` routes a @hono/node-server's upgrades through
// the Hono app, and the middleware (`socketapi(app)`) accepts them through a callback it
// finds in Hono's `env`.

import type { EventEmitter } from "node:events";
import type { AnyApp } from "../../src/adapter.ts";
import { admitUpgrade, registerRuntimeUpgrader, type UpgradeRequest } from "../../src/adapter.ts";
import { requestUrl, toHeaders } from "./http.ts";
import type { Attachment, AttachOptions } from "./options.ts";
import { decision, handleUpgrades, type UpgradeDecision } from "./upgrades.ts";

/** Where `injectWebSocket` puts its upgrade callback in Hono's `env`, for the middleware. */
const NODE_UPGRADE: unique symbol = Symbol.for("socketapi.node-upgrade");

/** Accepts an upgrade on Node for `app`: returns the refusal, or a marker response. */
type NodeUpgrade = (app: AnyApp, request: UpgradeRequest) => Promise<Response>;

// Hono's middleware accepts an upgrade on Node through the callback in its `env`.
registerRuntimeUpgrader(
  (app, request, env) => {
    const upgrade = (env as { [NODE_UPGRADE]?: NodeUpgrade } | undefined)?.[NODE_UPGRADE];
    return upgrade?.(app, { url: request.url, headers: request.headers });
  },
  // @hono/node-server passes the request's IncomingMessage as `env.incoming`.
  (_request, env) => {
    const incoming = (env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)
      ?.incoming;
    return incoming?.socket ? (incoming.socket.remoteAddress ?? "") : undefined;
  },
);

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
        accepted = decision(app, admission);
        return new Response(null, { status: 200, headers: { "x-socketapi-upgrade": "accepted" } });
      };
      const request = new Request(requestUrl(req.url ?? "/", req.headers.host), {
        headers: toHeaders(req.headers),
      });
      const env = { incoming: req, outgoing: undefined, [NODE_UPGRADE]: upgrade };
      const response = await hono.fetch(request, env);
      return accepted ?? { kind: "refuse", response };
    },
    (app) => options.maxPayload ?? app.limits.maxFrameBytes,
  );
}
