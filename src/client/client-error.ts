import type { WireIssue } from "../protocol/protocol.ts";

/** Codes the client itself gives to failures that are not the server's error frames. */
export const ClientErrorCode = {
  /** No answer within the request's timeout. */
  TIMEOUT: "TIMEOUT",
  /** The connection dropped while the request was in flight; it was not retried. */
  DISCONNECTED: "DISCONNECTED",
  /** The client was closed with `close()`. */
  CLOSED: "CLOSED",
  /**
   * A connection attempt failed before it opened (the server is down, or refused with a
   * status that may change: 503, 429); the client tries again. Only `onError` hears it.
   */
  CONNECT_FAILED: "CONNECT_FAILED",
  /**
   * The server refused the WebSocket upgrade with an HTTP status that will not change by
   * itself (401, 403, 404, ...): the client stops reconnecting. `status` has the code where
   * the runtime tells it (`ws`, Bun, Deno; not browsers or Node 22's global WebSocket).
   */
  REFUSED: "REFUSED",
  /** The server sent a frame that is not a SocketAPI frame (not JSON, not an object). Only `onError` hears it. */
  INVALID_FRAME: "INVALID_FRAME",
  /** A listener or handler the app gave the client threw (its error is the `cause`). Only `onError` hears it. */
  LISTENER_FAILED: "LISTENER_FAILED",
  /**
   * The app cancelled the request (its `signal` aborted, or it left a `for await` over
   * `client.stream` early): the server was told, and stopped its handler. The signal's
   * reason is the `cause`.
   */
  CANCELLED: "CANCELLED",
  /** The runtime's socket threw when the client sent a frame or opened one (the `cause`). Only `onError` hears it. */
  SOCKET_FAILED: "SOCKET_FAILED",
} as const;

/**
 * Why a request failed: an error frame from the server (its `code`, `message` and
 * `issues`), or the client's own `TIMEOUT`, `DISCONNECTED` or `CLOSED`.
 *
 * @example
 * ```ts
 * try {
 *   await client.action("add_numbers", { a: 1, b: 2 });
 * } catch (error) {
 *   if (error instanceof SocketAPIClientError && error.code === "INVALID_PARAMS") console.log(error.issues);
 * }
 * ```
 */
export class SocketAPIClientError extends Error {
  /** The server's error code, or the client's own. */
  readonly code: string;
  /** What failed validation, when the server said. */
  readonly issues: WireIssue[] | undefined;
  /** The action or channel of the request. */
  readonly channel: string | undefined;
  /** The HTTP status of a refused upgrade (`REFUSED`), where the runtime tells it. */
  readonly status: number | undefined;

  constructor(
    code: string,
    message: string,
    details: {
      issues?: WireIssue[] | undefined;
      channel?: string | undefined;
      status?: number | undefined;
      cause?: unknown;
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "SocketAPIClientError";
    this.code = code;
    this.issues = details.issues;
    this.channel = details.channel;
    this.status = details.status;
  }
}
