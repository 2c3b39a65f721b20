/**
 * The wire protocol: every frame a client and a server exchange, and the closed table of
 * error codes. One WebSocket carries everything; every frame is a JSON object in a text
 * frame. This is the contract with SocketAPI 0.2's clients: change nothing here lightly.
 *
 * @module
 */

/** A request id chosen by the client: a string of at most 128 characters or a finite number. */
export type RequestId = string | number;

/** The longest request id a client may send, in characters. */
export const MAX_REQUEST_ID_LENGTH = 128;

/** The subprotocol a SocketAPI client offers (`Sec-WebSocket-Protocol`), and the only one echoed. */
export const SOCKETAPI_PROTOCOL = "socketapi";

/**
 * The subprotocol entry that carries a token, beside `socketapi`: this prefix, then the
 * token's UTF-8 in base64url without padding (`socketapi.bearer.dC0xMjM`).
 */
export const TOKEN_PROTOCOL_PREFIX = "socketapi.bearer.";

/** The longest token a client may offer or refresh with, in bytes of UTF-8. */
export const MAX_TOKEN_BYTES = 8192;

/** Calls action `channel` with `data` as its input (absent means `{}`). */
export interface ActionFrame {
  type: "action";
  channel: string;
  data?: unknown;
  id?: RequestId;
}

/**
 * Subscribes to channel `channel`; `data` holds the subscribe-time parameters. On a channel
 * with history, `since` asks for every broadcast after that position (an addition to
 * SocketAPI 0.2's protocol: docs/recovery.md).
 */
export interface SubscribeFrame {
  type: "subscribe";
  channel: string;
  data?: unknown;
  id?: RequestId;
  since?: { offset: number; epoch: string };
  /** On a channel with presence: list the members in `subscribed`, then tell joins and leaves. */
  presence?: boolean;
}

/** Stops receiving channel `channel`. */
export interface UnsubscribeFrame {
  type: "unsubscribe";
  channel: string;
  id?: RequestId;
}

/**
 * Cancels the request `id` on `channel` while it runs (an addition to SocketAPI 0.2's
 * protocol: docs/protocol.md). The request ends with its own answer, `CANCELLED`; a
 * request that is not running (unknown, or finished) is left alone and nothing answers.
 */
export interface CancelFrame {
  type: "cancel";
  channel: string;
  id: RequestId;
}

/**
 * Gives the connection a fresh credential before the one it opened with expires (an
 * addition to SocketAPI 0.2's protocol, for an app with `onRefresh`: docs/connections.md).
 * Answered by `refreshed`, or an error; the connection stays open either way.
 */
export interface RefreshFrame {
  type: "refresh";
  token: string;
  id?: RequestId;
}

/** Liveness check, answered by `{"type":"pong"}`. */
export interface PingFrame {
  type: "ping";
}

/** Every frame a client may send. */
export type ClientFrame =
  | ActionFrame
  | SubscribeFrame
  | UnsubscribeFrame
  | CancelFrame
  | RefreshFrame
  | PingFrame;

/**
 * One piece of a streaming action's answer (a value its handler yielded), before the
 * action's `completed` or error: an addition to SocketAPI 0.2's protocol.
 */
export interface ChunkFrame {
  type: "chunk";
  channel: string;
  data?: unknown;
  id?: RequestId;
}

/** An action finished; `data` is left out only when the handler returned `undefined`. */
export interface ActionCompletedFrame {
  type: "action";
  channel: string;
  status: "completed";
  data?: unknown;
  id?: RequestId;
}

/**
 * The subscription is active. On a channel with history it says where the stream is
 * (`offset`, `epoch`) and, when the subscribe gave `since`, whether everything after it
 * follows (`recovered`).
 */
export interface SubscribedFrame {
  type: "subscribed";
  channel: string;
  offset?: number;
  epoch?: string;
  recovered?: boolean;
  /** On a channel with presence, when the subscribe asked for it: at most 1,000 members. */
  members?: { user: string; info: unknown }[];
  /** How many members the channel has. */
  count?: number;
  id?: RequestId;
}

/** Answers every unsubscribe, also for a channel the client was not subscribed to. */
export interface UnsubscribedFrame {
  type: "unsubscribed";
  channel: string;
  id?: RequestId;
}

/**
 * A broadcast on a subscribed channel, or its initial data right after `subscribed`. A
 * broadcast on a channel with history carries its `offset` in the stream and the stream's
 * `epoch`.
 */
export interface DataFrame {
  type: "data";
  channel: string;
  data: unknown;
  offset?: number;
  epoch?: string;
}

/** A member joined a channel with presence (its first connection subscribed). */
export interface JoinFrame {
  type: "join";
  channel: string;
  user: string;
  info: unknown;
}

/** A member left a channel with presence (its last connection is gone). */
export interface LeaveFrame {
  type: "leave";
  channel: string;
  user: string;
}

/** One validation problem: what is wrong and where, from the root of `data`. */
export interface WireIssue {
  message: string;
  path: (string | number)[];
}

/** The frame could not be served; the connection stays open. */
export interface ErrorFrame {
  type: "error";
  code: string;
  message: string;
  channel?: string;
  id?: RequestId;
  issues?: WireIssue[];
}

/** Answers ping. */
export interface PongFrame {
  type: "pong";
}

/**
 * A refresh was taken: the connection's credential now expires in `expiresIn` ms (left out:
 * never).
 */
export interface RefreshedFrame {
  type: "refreshed";
  expiresIn?: number;
  id?: RequestId;
}

/**
 * The connection's credential expires in `expiresIn` ms: sent first, only to a client that
 * offered the `socketapi` subprotocol, when `onConnect` set an expiry. Refresh before then.
 */
export interface ExpiryFrame {
  type: "expiry";
  expiresIn: number;
}

/** Every frame a server may send. */
export type ServerFrame =
  | ActionCompletedFrame
  | ChunkFrame
  | SubscribedFrame
  | UnsubscribedFrame
  | DataFrame
  | JoinFrame
  | LeaveFrame
  | ErrorFrame
  | PongFrame
  | RefreshedFrame
  | ExpiryFrame;

/**
 * The closed table of error codes. Apps may add their own codes through
 * `SocketAPIError`; these are the ones the framework itself sends.
 */
export const ErrorCode = {
  INVALID_MESSAGE: "INVALID_MESSAGE",
  MESSAGE_TOO_LARGE: "MESSAGE_TOO_LARGE",
  INVALID_JSON: "INVALID_JSON",
  UNKNOWN_TYPE: "UNKNOWN_TYPE",
  NOT_FOUND: "NOT_FOUND",
  INVALID_PARAMS: "INVALID_PARAMS",
  FORBIDDEN: "FORBIDDEN",
  HANDLER_ERROR: "HANDLER_ERROR",
  INTERNAL_ERROR: "INTERNAL_ERROR",
  RATE_LIMITED: "RATE_LIMITED",
  TOO_MANY_SUBSCRIPTIONS: "TOO_MANY_SUBSCRIPTIONS",
  HANDLER_TIMEOUT: "HANDLER_TIMEOUT",
  CANCELLED: "CANCELLED",
  TOO_MANY_STREAMS: "TOO_MANY_STREAMS",
  UNAUTHORIZED: "UNAUTHORIZED",
} as const;

/** One of the framework's own error codes. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The exact texts of protocol.md's check table; SocketAPI 0.2's clients match on some of them. */
export const ErrorMessage = {
  binaryFrame: "Binary frames are not supported.",
  tooLarge: (limit: number): string => `Message exceeds ${limit} bytes.`,
  invalidJson: "Invalid JSON.",
  invalidEncoding: (name: string): string => `Invalid ${name}.`,
  notAnObject: "Message must be a JSON object.",
  typeRequired: "Message type is required.",
  typeNotString: "Message type must be a string.",
  channelRequired: "Channel is required.",
  channelNotString: "Channel must be a string.",
  nameTooLong: (limit: number): string => `Channel exceeds ${limit} characters.`,
  nameNotUnicode: "Channel must be well-formed Unicode (it holds a lone surrogate).",
  invalidId: "Message id must be a string or a number.",
  unknownType: (type: string): string => `Unknown message type: ${type}.`,
  actionNotFound: (name: string): string => `Action '${name}' not found.`,
  channelNotFound: (name: string): string => `Channel '${name}' not found.`,
  // No period: SocketAPI 0.2 sent these texts exactly so.
  invalidActionParams: (name: string): string => `Invalid parameters for action '${name}'`,
  invalidChannelParams: (name: string): string => `Invalid parameters for channel '${name}'`,
  forbidden: "Forbidden.",
  internal: "Internal server error.",
  rateLimited: (perSecond: number): string =>
    `Rate limit exceeded: at most ${perSecond} messages per second.`,
  queueFull: (limit: number): string => `Too many messages waiting: at most ${limit}.`,
  queueBytesFull: (limit: number): string =>
    `Too many bytes waiting: at most ${limit} bytes of messages.`,
  tooManySubscriptions: (limit: number): string =>
    `Too many subscriptions: at most ${limit} per connection.`,
  handlerTimeout: (ms: number): string => `Handler did not finish within ${ms} ms.`,
  cancelNeedsId: "Cancel needs the id of the request it cancels.",
  cancelled: "Cancelled by the client.",
  tooManyStreams: (limit: number): string =>
    `Too many streams: at most ${limit} at once per connection.`,
  streamIdle: (ms: number): string => `Stream sent no chunk within ${ms} ms.`,
  streamTimeout: (ms: number): string => `Stream did not finish within ${ms} ms.`,
  refreshNeedsToken: "Refresh needs a token (a non-empty string).",
  tokenTooLong: (bytes: number): string => `Token exceeds ${bytes} bytes.`,
  unauthorized: "Unauthorized.",
  refreshChangesUser: "A refresh cannot change the user.",
  refreshUnderWay: "A refresh is under way: one at a time.",
  refreshTimeout: (ms: number): string => `Refresh did not finish within ${ms} ms.`,
} as const;

/** The exact text of a ping, so that an edge runtime can answer it without waking the app. */
export const PING_FRAME = '{"type":"ping"}';

/** The answer to a ping. */
export const PONG_FRAME = '{"type":"pong"}';

/** WebSocket close codes the framework uses (protocol.md, "Close codes"). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
  /** The connection's credential expired and no refresh moved it (docs/connections.md). */
  tokenExpired: 4001,
} as const;
