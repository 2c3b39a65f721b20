import type { SocketAPI } from "./app.ts";

/** Hands an upgrade request to the platform that holds an app's connections. */
export type UpgradeRoute = (request: Request, env: unknown) => Promise<Response>;

// biome-ignore lint/suspicious/noExplicitAny: any app can be routed.
type AnyApp = SocketAPI<any, any, any>;

const routes = new WeakMap<AnyApp, UpgradeRoute>();

/**
 * Records where an app's upgrades must go when its connections do not live where the
 * request arrives: on Cloudflare Workers, in a Durable Object. Middleware that accepts
 * upgrades (Hono's) asks {@link upgradeRoute} first. Set by the Cloudflare adapter.
 */
export function setUpgradeRoute(app: AnyApp, route: UpgradeRoute): void {
  routes.set(app, route);
}

/** The route recorded for an app's upgrades, if any. */
export function upgradeRoute(app: AnyApp): UpgradeRoute | undefined {
  return routes.get(app);
}
