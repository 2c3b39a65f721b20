// The fallback transport's two requests, as the request table routes them: a GET that
// accepts `text/event-stream` opens a session, a POST with `?session=` feeds one.

import type { SocketAPI } from "../../app.ts";
import { fallbackSessionsOf } from "./fallback-sessions.ts";

/** Which of the fallback's requests this is, if it is one. */
export function fallbackRouteOf(
  method: string,
  accept: string | null | undefined,
  search: string,
): "fallback-stream" | "fallback-post" | undefined {
  if (method === "GET" && accept?.includes("text/event-stream")) return "fallback-stream";
  if (method === "POST" && /[?&]session=/.test(search)) return "fallback-post";
  return undefined;
}

/**
 * Answers a fallback request: the stream of a new session (after the upgrade's admission:
 * refused with its status, 401, 403, 503, as an upgrade would be), or a POST of frames.
 *
 * @example
 * ```ts
 * // in a fetch-style adapter, for a request the table routed to `fallback-stream`:
 * return handleFallbackRequest(app, "fallback-stream", request);
 * ```
 */
export function handleFallbackRequest(
  // biome-ignore lint/suspicious/noExplicitAny: any app can be served.
  app: SocketAPI<any, any, any>,
  route: "fallback-stream" | "fallback-post",
  request: Request,
): Promise<Response> {
  const sessions = fallbackSessionsOf(app);
  return route === "fallback-stream" ? sessions.open(request) : sessions.post(request);
}

/**
 * Closes the fallback sessions of `app` here (a shutdown: 1001), as sockets are; settles
 * once their close events went out (at most a second).
 */
// biome-ignore lint/suspicious/noExplicitAny: any app can be served.
export function closeFallbackSessions(app: SocketAPI<any, any, any>): Promise<void> {
  return fallbackSessionsOf(app).closeAll(1001, "Server shutting down");
}
