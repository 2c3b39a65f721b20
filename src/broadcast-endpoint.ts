import type { SocketAPI } from "./app.ts";
import { InvalidChannelParamsError } from "./errors.ts";

/** Options of the HTTP broadcast endpoint (`POST /_broadcast`). */
export interface BroadcastEndpointOptions {
  /** The path it answers on; default `/_broadcast`. */
  path?: string | undefined;
  /**
   * A shared secret: a caller that sends `Authorization: Bearer TOKEN` may broadcast from
   * anywhere. Without it only loopback callers may.
   */
  token?: string | undefined;
  /**
   * Whether callers on loopback may broadcast without the token (default `true`, as in
   * SocketAPI 0.2). Set it to `false` behind a reverse proxy on the same host, where every
   * request comes from loopback.
   */
  allowLoopback?: boolean | undefined;
}

/** The default path of the broadcast endpoint. */
export const BROADCAST_PATH = "/_broadcast";

/**
 * Whether `address` (as a socket reports it) is on the loopback network: 127.0.0.0/8,
 * `::1`, or an IPv4-mapped loopback address.
 */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  return address === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** Compares two strings in time that depends only on their lengths. */
function safeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

/**
 * Serves `POST /_broadcast` with `{"channel": NAME, "data": PARAMS}`: runs the channel's
 * handle as if the server called it, so that another process can broadcast. Answers 200
 * `{"ok":true,"delivered":N}`, 403 to an untrusted caller, 404 for an unknown channel, 422
 * for invalid parameters (with `issues`), 400 for a malformed body, 405 for another method,
 * 413 for a body over the app's frame limit. `NAME` may be concrete (`rooms/42`).
 *
 * @example
 * ```ts
 * // in an adapter, for a request from a known peer address:
 * const response = await handleBroadcastRequest(app, request, {
 *   fromLoopback: isLoopbackAddress(remoteAddress), options: { token: process.env.BROADCAST_TOKEN },
 * });
 * ```
 */
export async function handleBroadcastRequest(
  // biome-ignore lint/suspicious/noExplicitAny: any app can be served.
  app: SocketAPI<any, any, any>,
  request: Request,
  caller: { fromLoopback: boolean; options?: BroadcastEndpointOptions },
): Promise<Response> {
  if (request.method !== "POST") return json(405, { error: "Use POST." }, { allow: "POST" });
  const { token, allowLoopback = true } = caller.options ?? {};
  const authorization = request.headers.get("authorization") ?? "";
  const hasToken =
    token !== undefined && token !== "" && safeEqual(authorization, `Bearer ${token}`);
  if (!hasToken && !(allowLoopback && caller.fromLoopback)) {
    return json(403, { error: "Forbidden." });
  }
  const text = await request.text();
  if (text.length > app.limits.maxMessageBytes) {
    return json(413, { error: `Body exceeds ${app.limits.maxMessageBytes} bytes.` });
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return json(400, { error: "Invalid JSON." });
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return json(400, { error: "Body must be a JSON object." });
  }
  const { channel, data } = body as { channel?: unknown; data?: unknown };
  if (typeof channel !== "string" || channel === "") {
    return json(400, { error: "Channel is required." });
  }
  const match = app.findChannel(channel);
  if (!match) return json(404, { error: `Channel '${channel}' not found.` });
  if (data !== undefined && (data === null || typeof data !== "object" || Array.isArray(data))) {
    const issues = [{ message: "Parameters must be an object.", path: [] }];
    return json(422, { error: `Invalid parameters for channel '${channel}'`, issues });
  }
  try {
    const params = { ...(data as object | undefined), ...match.nameParams };
    const delivered = await match.declaration.handle(params);
    return json(200, { ok: true, delivered });
  } catch (error) {
    if (error instanceof InvalidChannelParamsError) {
      return json(422, {
        error: `Invalid parameters for channel '${channel}'`,
        issues: error.issues,
      });
    }
    app.reportError(error, { channel, phase: "broadcast" });
    return json(500, { error: "Internal server error." });
  }
}
