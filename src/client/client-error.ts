import type { WireIssue } from "../protocol.ts";

/** Codes the client itself gives to failures that are not the server's error frames. */
export const ClientErrorCode = {
  /** No answer within the request's timeout. */
  TIMEOUT: "TIMEOUT",
  /** The connection dropped while the request was in flight; it was not retried. */
  DISCONNECTED: "DISCONNECTED",
  /** The client was closed with `close()`. */
  CLOSED: "CLOSED",
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

  constructor(
    code: string,
    message: string,
    details: { issues?: WireIssue[] | undefined; channel?: string | undefined } = {},
  ) {
    super(message);
    this.name = "SocketAPIClientError";
    this.code = code;
    this.issues = details.issues;
    this.channel = details.channel;
  }
}
