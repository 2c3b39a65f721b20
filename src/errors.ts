import { ErrorCode, ErrorMessage, type WireIssue } from "./protocol/protocol.ts";

/** Options of a {@link SocketAPIError}. */
export interface SocketAPIErrorOptions {
  /** The code the client sees; default `HANDLER_ERROR`. */
  code?: string | undefined;
  /** Validation problems to list in the error frame's `issues`. */
  issues?: WireIssue[] | undefined;
  /** The underlying error, kept for logs; never sent to the client. */
  cause?: unknown | undefined;
}

/**
 * The error a handler throws to answer with its own code and message. The client sees
 * both; anything else a handler throws becomes `INTERNAL_ERROR` with no detail.
 *
 * @example
 * ```ts
 * throw new SocketAPIError("Room is full", { code: "ROOM_FULL" });
 * // the client receives {"type":"error","code":"ROOM_FULL","message":"Room is full",...}
 * ```
 */
export class SocketAPIError extends Error {
  /** The code sent to the client. */
  readonly code: string;
  /** Validation problems sent to the client, if any. */
  readonly issues: WireIssue[] | undefined;

  constructor(message: string, options: SocketAPIErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SocketAPIError";
    this.code = options.code ?? ErrorCode.HANDLER_ERROR;
    this.issues = options.issues;
  }
}

/**
 * Refuses a request: the client receives `FORBIDDEN` with this message (default
 * `Forbidden.`). Throw it from a guard, a dependency or a handler.
 *
 * @example
 * ```ts
 * if (!ctx.connection.state.user) throw new ForbiddenError("Log in first.");
 * ```
 */
export class ForbiddenError extends SocketAPIError {
  constructor(message: string = ErrorMessage.forbidden) {
    super(message, { code: ErrorCode.FORBIDDEN });
    this.name = "ForbiddenError";
  }
}

/**
 * Refuses a credential: thrown from `onRefresh`, the client's `refresh` is answered
 * `UNAUTHORIZED` with this message (default `Unauthorized.`), and the connection keeps the
 * expiry it had.
 *
 * @example
 * ```ts
 * onRefresh: (credential) => {
 *   if (!isValid(credential.token)) throw new UnauthorizedError("Token revoked.");
 * },
 * ```
 */
export class UnauthorizedError extends SocketAPIError {
  constructor(message: string = ErrorMessage.unauthorized) {
    super(message, { code: ErrorCode.UNAUTHORIZED });
    this.name = "UnauthorizedError";
  }
}

/**
 * Thrown by a channel handle (a broadcast started by the server) when the parameters fail
 * the channel's schema. It is a fault of the server's code, not of a client: inside an
 * action it becomes `INTERNAL_ERROR`; the broadcast endpoint answers it with 422.
 */
export class InvalidChannelParamsError extends Error {
  /** The channel the broadcast was for. */
  readonly channel: string;
  /** What failed, in the wire format. */
  readonly issues: WireIssue[];

  constructor(channel: string, issues: WireIssue[]) {
    super(ErrorMessage.invalidChannelParams(channel));
    this.name = "InvalidChannelParamsError";
    this.channel = channel;
    this.issues = issues;
  }
}

/**
 * A handler (with its schemas, dependencies and guard) that did not finish within the app's
 * `handlerTimeout`: the client got `HANDLER_TIMEOUT`, the app's error hook gets this, and the
 * handler's `ctx.signal` is aborted with it as the reason.
 */
export class HandlerTimeoutError extends Error {
  /** The action or channel whose handler ran too long. */
  readonly channel: string;
  /** The timeout, in ms. */
  readonly timeout: number;

  constructor(channel: string, timeout: number) {
    super(`The handler of '${channel}' did not finish within ${timeout} ms.`);
    this.name = "HandlerTimeoutError";
    this.channel = channel;
    this.timeout = timeout;
  }
}

/**
 * The reason a handler's `ctx.signal` aborts with when the client cancelled its request (a
 * `cancel` frame: the typed client's `signal`, or a `for await` over `client.stream` left
 * early). A closed connection aborts the signal with an `AbortError` instead, a timeout
 * with a {@link HandlerTimeoutError}.
 *
 * @example
 * ```ts
 * import { RequestCancelledError } from "socketapi";
 *
 * function onAbort(signal: AbortSignal): string {
 *   return signal.reason instanceof RequestCancelledError ? "cancelled" : "closed or timed out";
 * }
 * ```
 */
export class RequestCancelledError extends Error {
  /** The action whose request was cancelled. */
  readonly channel: string;

  constructor(channel: string) {
    super(`The client cancelled its request to '${channel}'.`);
    this.name = "RequestCancelledError";
    this.channel = channel;
  }
}
