import { type Compression, type CompressionOptions, resolveCompression } from "./compression.ts";
import {
  DEFAULT_RATE_LIMIT,
  type RateLimit,
  type ResolvedRateLimit,
  resolveRateLimit,
} from "./rate-limiter.ts";

/** The limits an app holds every connection to, as its options set them. */
export interface LimitOptions {
  /** The largest text frame accepted, in bytes (default 1 MiB); larger ones get MESSAGE_TOO_LARGE. */
  maxMessageBytes?: number | undefined;
  /**
   * How many bytes may wait in one connection's send buffer (default 4 MiB). A client
   * that stops reading is closed with 1013 when its buffer passes this, and leaves its
   * channels, so that it never holds unbounded memory or slows the others.
   */
  maxBufferedBytes?: number | undefined;
  /**
   * How many frames each connection may send (a token bucket): default 1000 per second,
   * 1000 at once. Over it, frames are answered RATE_LIMITED; a client that keeps sending
   * is closed with 1008. `false` turns it off.
   */
  rateLimit?: RateLimit | false | undefined;
  /** How many frames of one connection may wait to be served (default 256); more are RATE_LIMITED. */
  maxQueuedMessages?: number | undefined;
  /**
   * How many bytes of frames one connection may have waiting to be served (default four
   * times `maxMessageBytes`); a frame past it is answered RATE_LIMITED and not kept.
   */
  maxQueuedBytes?: number | undefined;
  /** How many channels one connection may subscribe to (default 100); more are TOO_MANY_SUBSCRIPTIONS. */
  maxSubscriptions?: number | undefined;
  /** How many connections the app holds at once (default 10,000); more upgrades are refused with 503. */
  maxConnections?: number | undefined;
  /**
   * How many upgrades the app admits per second, and at once above that (a token bucket):
   * past it an upgrade is refused with 503 and `Retry-After: 1`, before `onConnect` runs,
   * and the typed client retries after its jittered backoff. For reconnect storms: a
   * deploy drops every socket of an instance and they come back together
   * (docs/scaling.md, "Deploys and reconnect storms"). Default `false`: no limit.
   *
   * @example
   * ```ts
   * const app = new SocketAPI({ connectRate: { perSecond: 2000, burst: 4000 } });
   * ```
   */
  connectRate?: ConnectRate | false | undefined;
  /**
   * The longest action or channel name a client may send, in characters (default 256);
   * longer ones are answered INVALID_MESSAGE before anything is looked up or kept.
   */
  maxNameLength?: number | undefined;
  /**
   * How long one frame's handling (schemas, dependencies, guard, handler, subscription)
   * may take, in ms (default 30,000). Past it the client gets `HANDLER_TIMEOUT`, the
   * handler's `ctx.signal` is aborted, the frame's place is freed for the next one and a
   * late result is dropped. `false` turns it off.
   */
  handlerTimeout?: number | false | undefined;
  /**
   * Seconds without a sign of life (a frame, a pong) after which a connection is taken for
   * dead and closed; adapters ping idle connections before that. Default 60.
   */
  idleTimeout?: number | undefined;
  /**
   * How many channels with history an instance keeps hearing after their last subscriber
   * there left, so that their memory stream stays whole for a client coming back (for the
   * history's ttl; with a relay and a store of this instance, not Redis). Default 10,000;
   * past it the oldest stops being heard. Each connection leaves at most
   * `maxSubscriptions` of them. A channel whose stream keeps nothing is never kept heard.
   */
  maxLingeringChannels?: number | undefined;
  /**
   * How long a member of a channel with presence stays after its last connection left, in
   * ms (default 1,000), before the others hear its leave: back within it (a reload, a
   * resubscribe), nobody hears anything. A member that toggles its presence makes at most a
   * join and a leave per delay, however fast it sends. `0` sends each leave at once.
   */
  presenceLeaveDelay?: number | undefined;
  /**
   * How many frames of one connection may be served at once (default 1: in arrival order,
   * each answered before the next starts). Above 1, answers may overtake each other and
   * clients match them by `id`.
   */
  concurrency?: number | undefined;
  /**
   * How many streaming actions (handlers that return an async iterable) one connection may
   * have open at once (default 16); one more is answered TOO_MANY_STREAMS. An open stream
   * holds no place of `concurrency`: the connection's other frames go on.
   */
  maxStreams?: number | undefined;
  /**
   * How long a stream may run in all, in ms (default 600,000: ten minutes). Past it the
   * client gets `HANDLER_TIMEOUT` and the generator is stopped. `false` turns it off.
   * Between two chunks, `handlerTimeout` applies.
   */
  streamTimeout?: number | false | undefined;
  /**
   * How many bytes may wait in a connection's send buffer before a stream stops pulling its
   * generator (default 64 KiB): it pulls again once the client has read them, so that a
   * stream costs at most about this much, however fast its generator yields.
   */
  streamHighWaterMark?: number | undefined;
  /**
   * permessage-deflate for clients that offer it (default off). A compressed frame is
   * held to `maxMessageBytes` once inflated, like any other; where the runtime cannot
   * stop inflating at a bound (Workers: 32 MiB), docs/transports.md says so. `true`
   * takes the defaults of {@link CompressionOptions}.
   *
   * @example
   * ```ts
   * const app = new SocketAPI({ compression: true });
   * ```
   */
  compression?: boolean | CompressionOptions | undefined;
}

/** Every limit of an app, defaults applied: resolved once, read by sessions and adapters. */
export interface Limits {
  readonly maxMessageBytes: number;
  /**
   * The largest frame read at all where the runtime can refuse one before reading it (Node,
   * Bun): four times `maxMessageBytes`. Past it the socket closes with 1009; between the
   * two, the frame is answered MESSAGE_TOO_LARGE.
   */
  readonly maxFrameBytes: number;
  readonly maxBufferedBytes: number;
  readonly rateLimit: ResolvedRateLimit | false;
  /** Refusals (rate, queue) that close a connection with 1008, forgiven at this many a second. */
  readonly maxViolations: number;
  readonly maxQueuedMessages: number;
  readonly maxQueuedBytes: number;
  readonly maxSubscriptions: number;
  readonly maxConnections: number;
  readonly connectRate: ResolvedRateLimit | false;
  readonly maxNameLength: number;
  readonly handlerTimeout: number | false;
  readonly idleTimeout: number;
  readonly concurrency: number;
  readonly maxLingeringChannels: number;
  readonly presenceLeaveDelay: number;
  readonly maxStreams: number;
  readonly streamTimeout: number | false;
  readonly streamHighWaterMark: number;
  /** permessage-deflate's settings; `false`: off. */
  readonly compression: Compression | false;
}

/** The default largest frame: 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES: number = 1024 * 1024;

/** The default send buffer limit per connection: 4 MiB. */
export const DEFAULT_MAX_BUFFERED_BYTES: number = 4 * 1024 * 1024;

/** The default handler timeout: 30 seconds. */
export const DEFAULT_HANDLER_TIMEOUT = 30_000;

/** Every limit from an app's options, with its default where the option is not set. */
export function resolveLimits(options: LimitOptions): Limits {
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const rateLimit = resolveRateLimit(options.rateLimit);
  return {
    maxMessageBytes,
    maxFrameBytes: 4 * maxMessageBytes,
    maxBufferedBytes: options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
    rateLimit,
    maxViolations: rateLimit === false ? DEFAULT_RATE_LIMIT.maxViolations : rateLimit.maxViolations,
    maxQueuedMessages: options.maxQueuedMessages ?? 256,
    maxQueuedBytes: options.maxQueuedBytes ?? 4 * maxMessageBytes,
    maxSubscriptions: options.maxSubscriptions ?? 100,
    maxConnections: options.maxConnections ?? 10_000,
    connectRate: resolveConnectRate(options.connectRate),
    maxNameLength: options.maxNameLength ?? 256,
    handlerTimeout: options.handlerTimeout ?? DEFAULT_HANDLER_TIMEOUT,
    idleTimeout: options.idleTimeout ?? 60,
    concurrency: Math.max(1, options.concurrency ?? 1),
    maxLingeringChannels: options.maxLingeringChannels ?? 10_000,
    presenceLeaveDelay: Math.max(0, options.presenceLeaveDelay ?? 1000),
    maxStreams: options.maxStreams ?? 16,
    streamTimeout: options.streamTimeout ?? 600_000,
    streamHighWaterMark: options.streamHighWaterMark ?? 64 * 1024,
    compression: resolveCompression(options.compression),
  };
}

/** Upgrades admitted per second, and at once above that. */
export interface ConnectRate {
  /** Upgrades per second, on average. */
  perSecond: number;
  /** Upgrades that may come at once above the rate (default: one second's worth). */
  burst?: number | undefined;
}

/** The token bucket's terms for a `connectRate` option; `false` for none. */
function resolveConnectRate(option: ConnectRate | false | undefined): ResolvedRateLimit | false {
  if (option === undefined || option === false) return false;
  if (!(option.perSecond > 0)) throw new TypeError("connectRate.perSecond must be above 0");
  return {
    messagesPerSecond: option.perSecond,
    burst: Math.max(1, option.burst ?? option.perSecond),
    maxViolations: 0,
  };
}
