import type { ChannelHandles, ChannelTypes } from "./channel-handle.ts";
import type { ActionContext, Connection, SubscribeContext, UpgradeRequest } from "./context.ts";
import type { RequestId } from "./protocol.ts";
import type { Session } from "./session.ts";

/**
 * What an action's handler gets as `ctx`. A class rather than an object literal, so that
 * `request`, `signal` and `channels` cost nothing until a handler reads them: most never
 * touch the abort signal.
 */
export class HandlerContext implements ActionContext<object, ChannelTypes> {
  readonly event = "action" as const;
  readonly connection: Connection<object>;
  readonly id: RequestId | undefined;
  readonly #handles: ChannelHandles<ChannelTypes>;

  constructor(
    session: Session<object>,
    id: RequestId | undefined,
    handles: ChannelHandles<ChannelTypes>,
  ) {
    this.connection = session;
    this.id = id;
    this.#handles = handles;
  }

  get request(): UpgradeRequest {
    return this.connection.request;
  }

  get signal(): AbortSignal {
    return (this.connection as Session<object>).signal;
  }

  get channels(): ChannelHandles<ChannelTypes> {
    return (this.connection as Session<object>).channelsFor(this.#handles);
  }
}

/** What a channel's handler gets as `ctx` when a client subscribes. */
export class SubscribeHandlerContext implements SubscribeContext<object, ChannelTypes> {
  readonly event = "subscribe" as const;
  readonly connection: Connection<object>;
  readonly id: RequestId | undefined;
  readonly channel: string;
  readonly #handles: ChannelHandles<ChannelTypes>;

  constructor(
    session: Session<object>,
    id: RequestId | undefined,
    handles: ChannelHandles<ChannelTypes>,
    channel: string,
  ) {
    this.connection = session;
    this.id = id;
    this.#handles = handles;
    this.channel = channel;
  }

  get request(): UpgradeRequest {
    return this.connection.request;
  }

  get signal(): AbortSignal {
    return (this.connection as Session<object>).signal;
  }

  get channels(): ChannelHandles<ChannelTypes> {
    return (this.connection as Session<object>).channelsFor(this.#handles);
  }
}
