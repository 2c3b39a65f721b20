// What adapters call to serve the dashboard: each loads the dashboard's code when first
// called, so that a server without `admin` never loads it.
import type { AnyApp } from "../app.ts";
import type { Hub } from "../hub/hub.ts";
import { type AdminOptions, adminOptions } from "./admin-options.ts";
import type { SampleCollector } from "./admin-watch.ts";
import type { InstanceSample } from "./instance-sample.ts";

export type { SampleCollector } from "./admin-watch.ts";
export type { InstanceSample } from "./instance-sample.ts";

/** Checks the dashboard's options (a token of at least 16 characters): throws when wrong. */
export function checkAdminOptions(options: AdminOptions | undefined): void {
  adminOptions(options);
}

/** Answers a plain request to the dashboard's path: the page, the sign-in form, 303 or 405. */
export async function answerAdmin(
  app: AnyApp,
  request: { readonly url: string; readonly method: string; readonly headers: Headers },
  options: AdminOptions,
  title?: string,
): Promise<Response> {
  const { handleAdminRequest } = await import("./admin-endpoint.ts");
  return handleAdminRequest(app, request, options, title);
}

/**
 * The app that serves the dashboard's socket (an upgrade on its path is admitted by it);
 * `collect` where no relay carries the instances' samples (a Worker asks its objects).
 */
export async function adminAppFor(
  app: AnyApp,
  options: AdminOptions,
  collect?: SampleCollector,
): Promise<AnyApp> {
  const { adminOf } = await import("./admin-app.ts");
  return adminOf(app, options, collect).app;
}

/**
 * A place that holds connections (a Durable Object) sampled for a dashboard that asked:
 * its app counts for the dashboard from now until 5 s after the last ask.
 */
export async function sampleForDashboard(
  app: AnyApp,
  place: Hub,
  id: string,
  startedAt: number,
): Promise<InstanceSample> {
  const { sampleShard } = await import("./shard-sample.ts");
  return sampleShard(app, place, id, startedAt);
}

/**
 * Checks `options` (a token of at least 16 characters) and makes the dashboard of `app`,
 * when a server starts: it then hears the other instances' pages over the relay (or asks
 * them with `collect`, a Worker its objects).
 */
export function startAdmin(
  app: AnyApp,
  options: AdminOptions | undefined,
  collect?: SampleCollector,
): Promise<void> {
  // Wrong options throw here, synchronously: a handler made with them is never made.
  const checked = adminOptions(options);
  if (!checked) return Promise.resolve();
  return import("./admin-app.ts").then(({ adminOf }) => {
    adminOf(app, checked, collect);
  });
}

/** Stops the dashboard's sampling and closes its pages' sockets (within `timeout` ms). */
export async function closeAdmin(app: AnyApp, timeout?: number): Promise<void> {
  const { adminIfMade } = await import("./admin-app.ts");
  const admin = adminIfMade(app);
  if (!admin) return;
  admin.watch.close();
  await admin.app.closeConnections(timeout === undefined ? {} : { timeout });
}
