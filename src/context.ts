import type { ChannelHandles, ChannelTypes } from "./declare/channel-handle.ts";
import type { PresenceCount } from "./presence/presence-registry.ts";
import type { RequestId, ServerFrame } from "./protocol/protocol.ts";

/** The state kept per connection: whatever `onConnect` returned, changeable by handlers. */
export type ConnectionState = Record<string, unknown>;

/** The HTTP request that opened a WebSocket: its URL and headers. */
export interface UpgradeRequest {
  /** The full URL of the upgrade request, e.g. `ws://127.0.0.1:8000/?token=abc` as `http://...`. */
  readonly url: string;
  /** The headers of the upgrade request. */
  readonly headers: Headers;
}

/** One client's WebSocket connection, as handlers see it. */
export interface Connection<State extends object = ConnectionState> {
  /** A random id, unique per connection. */
  readonly id: string;
  /** Per-connection data: what `onConnect` returned; handlers may change it. */
  state: State;
  /** The request that opened the connection. */
  readonly request: UpgradeRequest;
  /** The concrete names of the channels this connection is subscribed to. */
  readonly subscriptions: ReadonlySet<string>;
  /** Whether the socket is still open. */
  readonly isOpen: boolean;
  /** Sends a frame to this client only. */
  send(frame: ServerFrame): void;
  /** Closes the connection (default code 1000). */
  close(code?: number, reason?: string): void;
}

/** Where an unexpected error happened, for the app's error hook. */
export interface ErrorInfo {
  /** The connection it happened on, if any. */
  readonly connection?: Connection<object>;
  /** The action or channel being served. */
  readonly channel?: string;
  /**
   * What was being done: `action`, `subscribe`, `send`, `connect`, `disconnect`,
   * `broadcast`, `persist`.
   */
  readonly phase: string;
}

/**
 * What a handler may read of the app that serves it, as `ctx.app`: so that no handler
 * needs the app's own variable, which would make the app's type refer to itself.
 */
export interface AppView<State extends object = ConnectionState> {
  /** The open connections (of this process, or of this Durable Object on Workers). */
  readonly connections: ReadonlySet<Connection<State>>;
  /** How many connections here are subscribed to a concrete channel name (`rooms/42`). */
  subscriberCount(channel: string): number;
  /**
   * How many connections are subscribed to a concrete channel name on every instance: with
   * a relay over Redis or NATS, every process; on Workers, every shard.
   */
  countSubscribers(channel: string): Promise<number>;
  /**
   * The members of a channel with presence (a concrete name), with the info each shows:
   * on every instance with the Redis relay or on Workers, else here (docs/presence.md).
   *
   * @example
   * ```ts
   * const here = await ctx.app.presence("rooms/42"); // [{ user: "ada", info: { name: "Ada" } }]
   * ```
   */
  presence(channel: string): Promise<{ user: string; info: unknown }[]>;
  /**
   * Ends every session of a user (the app's `userId`) on every instance; resolves to how
   * many connections were closed (docs/connections.md).
   *
   * @example
   * ```ts
   * await ctx.app.disconnectUser("mallory", { code: 4003, reason: "Banned" });
   * ```
   */
  disconnectUser(
    userId: string,
    options?: { code?: number | undefined; reason?: string | undefined },
  ): Promise<number>;
  /** Ends one connection by its id, wherever it is; resolves to 1 if it was closed, else 0. */
  disconnectConnection(
    connectionId: string,
    options?: { code?: number | undefined; reason?: string | undefined },
  ): Promise<number>;
  /** How many members a channel with presence has, and how many connections they subscribed. */
  presenceCount(channel: string): Promise<PresenceCount>;
  /**
   * The last broadcasts a channel with history keeps (a concrete name), oldest first:
   * `last` of them, at most its history's `size` (default all it keeps). What a client
   * told `reset` (it missed more than can be sent again) reloads from; empty for a channel
   * without history.
   *
   * @example
   * ```ts
   * const recent = await ctx.app.history("rooms/42", { last: 50 }); // [{ data, offset, epoch }]
   * ```
   */
  history(
    channel: string,
    options?: { readonly last?: number | undefined },
  ): Promise<{ data: unknown; offset: number; epoch: string }[]>;
}

/** What every handler, guard and dependency receives besides its input. */
interface BaseContext<State extends object, Channels extends ChannelTypes> {
  /** The app's channels, by name: calling one broadcasts to its subscribers. */
  readonly channels: ChannelHandles<Channels>;
  /** The app that serves the handler: its connections, subscriber counts and presence. */
  readonly app: AppView<State>;
}

/** The context of an action handler, its guard and its dependencies. */
export interface ActionContext<
  State extends object = ConnectionState,
  Channels extends ChannelTypes = ChannelTypes,
> extends BaseContext<State, Channels> {
  readonly event: "action";
  /** The client that called the action. */
  readonly connection: Connection<State>;
  /** The request that opened the connection. */
  readonly request: UpgradeRequest;
  /** Aborted when the connection closes, so long work can stop early. */
  readonly signal: AbortSignal;
  /** The request id the client sent, if any. */
  readonly id: RequestId | undefined;
}

/** The context of a channel handler run because a client subscribes. */
export interface SubscribeContext<
  State extends object = ConnectionState,
  Channels extends ChannelTypes = ChannelTypes,
> extends BaseContext<State, Channels> {
  readonly event: "subscribe";
  /** The client that subscribes. */
  readonly connection: Connection<State>;
  /** The request that opened the connection. */
  readonly request: UpgradeRequest;
  /** Aborted when the connection closes. */
  readonly signal: AbortSignal;
  /** The request id the client sent, if any. */
  readonly id: RequestId | undefined;
  /** The concrete channel name, e.g. `rooms/42`. */
  readonly channel: string;
}

/** The context of a channel handler run to broadcast: started by the server, no connection. */
export interface BroadcastContext<
  Channels extends ChannelTypes = ChannelTypes,
  State extends object = ConnectionState,
> extends BaseContext<State, Channels> {
  readonly event: "broadcast";
  readonly connection?: undefined;
  /** The concrete channel name, e.g. `rooms/42`. */
  readonly channel: string;
}

/** The context of a channel handler: on subscribe it has the connection, on broadcast not. */
export type ChannelContext<
  State extends object = ConnectionState,
  Channels extends ChannelTypes = ChannelTypes,
> = SubscribeContext<State, Channels> | BroadcastContext<Channels, State>;

/** Any handler's context: what a dependency or guard shared by actions and channels receives. */
export type Context<
  State extends object = ConnectionState,
  Channels extends ChannelTypes = ChannelTypes,
> = ActionContext<State, Channels> | ChannelContext<State, Channels>;
