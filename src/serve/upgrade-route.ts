import type { AnyApp } from "../app.ts";

/** Hands an upgrade request to the platform that holds an app's connections. */
export type UpgradeRoute = (request: Request, env: unknown) => Promise<Response>;

/**
 * Accepts an upgrade for `app` in the runtime that a middleware's `env` belongs to (Bun's
 * server, the handoff `injectWebSocket` puts there on Node), or returns `undefined` when
 * `env` is not its runtime's.
 */
export type RuntimeUpgrader = (
  app: AnyApp,
  request: Request,
  env: unknown,
) => Promise<Response> | undefined;

/**
 * The address of the peer that sent a request a middleware (Hono's) receives, as the
 * runtime that `env` belongs to tells it; `undefined` when `env` is not its runtime's.
 */
export type PeerAddress = (request: Request, env: unknown) => string | undefined;

const routes = new WeakMap<AnyApp, UpgradeRoute>();
const upgraders: RuntimeUpgrader[] = [];
const addresses: PeerAddress[] = [];

/**
 * Records where an app's upgrades must go when its connections do not live where the
 * request arrives: on Cloudflare Workers, in a Durable Object. Set by the Cloudflare
 * adapter; {@link upgradeWhereServed} asks it first.
 */
export function setUpgradeRoute(app: AnyApp, route: UpgradeRoute): void {
  routes.set(app, route);
}

/**
 * Makes a runtime's adapter able to accept upgrades that a middleware (Hono's) receives:
 * each adapter registers its own when it is imported, so that the middleware never
 * imports an adapter.
 */
export function registerRuntimeUpgrader(upgrader: RuntimeUpgrader, address?: PeerAddress): void {
  if (!upgraders.includes(upgrader)) upgraders.push(upgrader);
  if (address && !addresses.includes(address)) addresses.push(address);
}

/** The peer's address of a middleware's request, as the first runtime that knows `env` says. */
export function peerAddressOf(request: Request, env: unknown): string | undefined {
  for (const address of addresses) {
    const found = address(request, env);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Accepts an upgrade where `app` is served: its recorded route, else the first registered
 * runtime that recognizes `env`. `undefined` when none does.
 */
export function upgradeWhereServed(
  app: AnyApp,
  request: Request,
  env: unknown,
): Promise<Response> | undefined {
  const route = routes.get(app);
  if (route) return route(request, env);
  for (const upgrader of upgraders) {
    const upgraded = upgrader(app, request, env);
    if (upgraded) return upgraded;
  }
  return undefined;
}
