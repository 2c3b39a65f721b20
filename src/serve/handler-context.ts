import type {
  ActionContext,
  AppView,
  Connection,
  SubscribeContext,
  UpgradeRequest,
} from "../context.ts";
import type { ChannelHandles, ChannelTypes } from "../declare/channel-handle.ts";
import type { FrameTrace } from "../observe/telemetry.ts";
import type { RequestId } from "../protocol/protocol.ts";
import type { HandlerConnection } from "./served-connection.ts";

/**
 * What every handler's `ctx` has, and the state of the one frame it serves. A class rather
 * than an object literal, so that `request`, `signal` and `channels` cost nothing until a
 * handler reads them: most never touch the abort signal.
 */
abstract class BaseHandlerContext {
  readonly #connection: HandlerConnection;
  readonly id: RequestId | undefined;
  /** The action or concrete channel name the frame is for. */
  readonly name: string;
  /**
   * The frame has been answered, or given up on (the handler timed out): nothing more is
   * sent for it.
   */
  ended = false;
  /** Its span and clock, when the app's telemetry records. */
  trace: FrameTrace | undefined;
  readonly #handles: ChannelHandles<ChannelTypes>;
  #abort: AbortController | undefined;
  #signal: AbortSignal | undefined;
  /** Why it was given up on, for a signal made after. */
  #abandoned: unknown;

  constructor(
    connection: HandlerConnection,
    id: RequestId | undefined,
    handles: ChannelHandles<ChannelTypes>,
    name: string,
  ) {
    this.#connection = connection;
    this.id = id;
    this.#handles = handles;
    this.name = name;
  }

  get connection(): Connection<object> {
    return this.#connection;
  }

  get request(): UpgradeRequest {
    return this.connection.request;
  }

  /** Aborted when the connection closes, or when this frame's handler times out. */
  get signal(): AbortSignal {
    if (this.#signal === undefined) {
      this.#abort = new AbortController();
      if (this.ended) this.#abort.abort(this.#abandoned);
      this.#signal = AbortSignal.any([this.#connection.signal, this.#abort.signal]);
    }
    return this.#signal;
  }

  get channels(): ChannelHandles<ChannelTypes> {
    return this.#connection.channelsFor(this.#handles);
  }

  get app(): AppView<object> {
    return this.#connection.app;
  }

  /** Gives up on the frame: marks it ended and aborts the handler's signal, if it took one. */
  abandon(reason: unknown): void {
    this.ended = true;
    this.#abandoned = reason;
    this.#abort?.abort(reason);
  }
}

/** What an action's handler gets as `ctx`. */
export class HandlerContext
  extends BaseHandlerContext
  implements ActionContext<object, ChannelTypes>
{
  readonly event = "action" as const;
}

/** What a channel's handler gets as `ctx` when a client subscribes. */
export class SubscribeHandlerContext
  extends BaseHandlerContext
  implements SubscribeContext<object, ChannelTypes>
{
  readonly event = "subscribe" as const;

  /** The concrete channel name, e.g. `rooms/42`. */
  get channel(): string {
    return this.name;
  }
}

/** Either handler context: what the session keeps per frame being served. */
export type FrameContext = HandlerContext | SubscribeHandlerContext;
