import type { SocketAPI } from "../app.ts";
import { broadcast } from "../declare/channel-handle.ts";
import { InvalidChannelParamsError } from "../errors.ts";
import { isSendableCode, targetFrom } from "../hub/disconnect.ts";
import type { Target } from "../hub/target.ts";
import { ErrorMessage } from "../protocol/protocol.ts";
import { isWellFormed, utf8ByteLength } from "../protocol/utf8.ts";
import { internalsOf } from "./app-internals.ts";
import { readBounded } from "./read-bounded.ts";

/** The target a broadcast request names: `undefined` for none, `null` when it is malformed. */
function targetOf(body: Record<string, unknown>): Target | undefined | null {
  const given = (["except", "to", "toUser"] as const).filter((key) => body[key] !== undefined);
  if (given.length === 0) return undefined;
  const key = given[0] as "except" | "to" | "toUser";
  const value = body[key];
  if (given.length > 1 || typeof value !== "string" || value === "" || value.length > 256) {
    return null;
  }
  return key === "except"
    ? { except: value }
    : key === "to"
      ? { connection: value }
      : { user: value };
}

/** Options of the HTTP broadcast endpoint (`POST /_broadcast`). */
export interface BroadcastEndpointOptions {
  /** The path it answers on; default `/_broadcast`. */
  path?: string | undefined;
  /**
   * A shared secret: a caller that sends `Authorization: Bearer TOKEN` may broadcast from
   * anywhere. Without it only loopback callers may, and only as a program calls (see
   * `allowLoopback`).
   */
  token?: string | undefined;
  /**
   * Whether loopback callers may broadcast without the token (default `true`, as in
   * SocketAPI 0.2), if they look like a program and not like a browser or a proxy: a JSON
   * body, no `Origin` or `Sec-Fetch-Site` header (a web page open in a browser on the same
   * host, or reached by DNS rebinding, always sends them), no `X-Forwarded-For`,
   * `X-Real-IP` or `Forwarded` header (a reverse proxy on the same host makes every caller
   * loopback). `false` requires the token from everyone.
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

/**
 * Compares a secret a caller sent with the expected one in time that depends only on what
 * the caller sent: neither the secret's characters nor its length show in the timing.
 */
export function secretMatches(given: string, expected: string): boolean {
  if (expected.length === 0) return false;
  let difference = given.length ^ expected.length;
  for (let i = 0; i < given.length; i++) {
    difference |= given.charCodeAt(i) ^ expected.charCodeAt(i % expected.length);
  }
  return difference === 0;
}

/**
 * Headers only a browser sends (every browser sends `Origin` on a POST, and
 * `Sec-Fetch-Site`; Node's `fetch` sends `Sec-Fetch-Mode` too, so that one says nothing),
 * and headers a proxy adds: such a caller is not a local program.
 */
const BROWSER_HEADERS = ["origin", "sec-fetch-site"];
const PROXY_HEADERS = ["x-forwarded-for", "x-real-ip", "forwarded"];

function isJson(headers: Headers): boolean {
  const type = headers.get("content-type")?.split(";")[0]?.trim().toLowerCase();
  return type === "application/json";
}

/**
 * Who may broadcast, decided from the headers alone, before the body is read: a caller
 * with the token; else a loopback caller that is a program, not a browser or a proxy.
 * Returns the refusal, or `undefined` to go on.
 */
export function refuseBroadcastCaller(
  headers: Headers,
  fromLoopback: boolean,
  options: BroadcastEndpointOptions = {},
): Response | undefined {
  const { token, allowLoopback = true } = options;
  const authorization = headers.get("authorization");
  if (authorization !== null) {
    if (token && secretMatches(authorization, `Bearer ${token}`)) return undefined;
    return json(403, { error: "Forbidden." });
  }
  if (!(allowLoopback && fromLoopback)) return json(403, { error: "Forbidden." });
  if (BROWSER_HEADERS.some((name) => headers.has(name))) {
    return json(403, { error: "Forbidden: browsers need the token." });
  }
  if (PROXY_HEADERS.some((name) => headers.has(name))) {
    return json(403, { error: "Forbidden: callers through a proxy need the token." });
  }
  return undefined;
}

/**
 * Serves `POST /_broadcast` with `{"channel": NAME, "data": PARAMS}`: runs the channel's
 * handle as if the server called it, so that another process can broadcast. One of
 * `"except": CONNECTION_ID`, `"to": CONNECTION_ID` or `"toUser": USER_ID` narrows it as the
 * handle's `except`, `to` and `toUser` do. Who calls is
 * checked before the body is read ({@link refuseBroadcastCaller}). Answers 200
 * `{"ok":true,"delivered":N}`, 403 to an untrusted caller, 404 for an unknown channel, 422
 * for invalid parameters (with `issues`), 400 for a malformed body, 405 for another method,
 * 413 for a body over the app's frame limit, 415 for a body that is not JSON. `NAME` may be
 * concrete (`rooms/42`).
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
  const refusal = refuseBroadcastCaller(request.headers, caller.fromLoopback, caller.options);
  if (refusal) return refusal;
  if (!isJson(request.headers)) {
    return json(415, { error: "Send the body as application/json." });
  }
  const limit = app.limits.maxMessageBytes;
  const text = await readBounded(request, limit);
  if (text === undefined) return json(413, { error: `Body exceeds ${limit} bytes.` });
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return json(400, { error: "Invalid JSON." });
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return json(400, { error: "Body must be a JSON object." });
  }
  if ("disconnect" in body) return disconnectRequested(app, body as Record<string, unknown>);
  const { channel, data } = body as { channel?: unknown; data?: unknown };
  if (typeof channel !== "string" || channel === "") {
    return json(400, { error: "Channel is required." });
  }
  if (!isWellFormed(channel)) return json(400, { error: ErrorMessage.nameNotUnicode });
  const target = targetOf(body as Record<string, unknown>);
  if (target === null) {
    return json(400, { error: "Give at most one of except, to and toUser, each a string." });
  }
  const match =
    channel.length > app.limits.maxNameLength ? undefined : internalsOf(app).findChannel(channel);
  if (!match) return json(404, { error: `Channel '${channel.slice(0, 100)}' not found.` });
  if (data !== undefined && (data === null || typeof data !== "object" || Array.isArray(data))) {
    const issues = [{ message: "Parameters must be an object.", path: [] }];
    return json(422, { error: `Invalid parameters for channel '${channel}'`, issues });
  }
  try {
    const params = { ...(data as object | undefined), ...match.nameParams };
    // Not the handle: a caller's invalid parameters are answered here, not reported.
    const delivered = await broadcast(match.declaration, params, undefined, target);
    return json(200, { ok: true, delivered });
  } catch (error) {
    if (error instanceof InvalidChannelParamsError) {
      return json(422, {
        error: `Invalid parameters for channel '${channel}'`,
        issues: error.issues,
      });
    }
    internalsOf(app).reportError(error, { channel, phase: "broadcast" });
    return json(500, { error: "Internal server error." });
  }
}

/**
 * `{"disconnect":{"user":ID}}` or `{"disconnect":{"connection":ID}}`, with `code` and
 * `reason` if wanted: closes those connections on every instance, answered with how many.
 */
async function disconnectRequested(
  // biome-ignore lint/suspicious/noExplicitAny: any app can be served.
  app: SocketAPI<any, any, any>,
  body: Record<string, unknown>,
): Promise<Response> {
  const target = targetFrom(body.disconnect);
  if (!target) {
    return json(400, {
      error: "disconnect must be {user} or {connection}, a string of at most 256 characters.",
    });
  }
  const { code, reason } = body;
  if (code !== undefined && !isSendableCode(code)) {
    return json(400, { error: "code must be 1000, 1001, 1008, 1011 or 3000-4999." });
  }
  if (reason !== undefined && (typeof reason !== "string" || utf8ByteLength(reason) > 123)) {
    return json(400, { error: "reason must be a string of at most 123 bytes." });
  }
  const options = { code: code as number | undefined, reason: reason as string | undefined };
  try {
    const disconnected =
      "user" in target
        ? await app.disconnectUser(target.user, options)
        : await app.disconnectConnection(target.connection, options);
    return json(200, { ok: true, disconnected });
  } catch (error) {
    internalsOf(app).reportError(error, { phase: "disconnect" });
    return json(500, { error: "Internal server error." });
  }
}
