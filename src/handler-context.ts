import type { ChannelHandles, ChannelTypes } from "./channel-handle.ts";
import type { ActionContext, Connection, SubscribeContext, UpgradeRequest } from "./context.ts";
import type { RequestId } from "./protocol.ts";
import type { Session } from "./session.ts";

/**
 * What every handler's `ctx` has. A class rather than an object literal, so that `request`,
 * `signal` and `channels` cost nothing until a handler reads them: most never touch the
 * abort signal.
 */
abstract class BaseHandlerContext {
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
  readonly channel: string;

  constructor(
    session: Session<object>,
    id: RequestId | undefined,
    handles: ChannelHandles<ChannelTypes>,
    channel: string,
  ) {
    super(session, id, handles);
    this.channel = channel;
  }
}
