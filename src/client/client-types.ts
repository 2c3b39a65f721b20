import type { SocketAPI } from "../app.ts";
import type { ActionTypes, ChannelTypes, Empty } from "../declare/api-types.ts";
import type { ConcreteName } from "../declare/channel-template.ts";

// biome-ignore lint/suspicious/noExplicitAny: the state type plays no part on the client.
type AnyState = any;

/** The actions of an app type: `ActionsOf<typeof app>`. */
export type ActionsOf<App> =
  App extends SocketAPI<AnyState, infer A, ChannelTypes> ? A : ActionTypes;

/** The channels of an app type: `ChannelsOf<typeof app>`. */
export type ChannelsOf<App> =
  App extends SocketAPI<AnyState, ActionTypes, infer C> ? C : ChannelTypes;

// biome-ignore lint/suspicious/noExplicitAny: any function is dropped by JSON.
type AnyFunction = (...args: any[]) => unknown;

/** Any Map or Set: each serializes as `{}`. */
type AnyCollection =
  | ReadonlyMap<unknown, unknown>
  | ReadonlySet<unknown>
  | WeakMap<object, unknown>
  | WeakSet<object>;

/**
 * What a value becomes after `JSON.stringify` and `JSON.parse`: dates and other `toJSON`
 * values become their JSON form, functions and symbols disappear, `undefined` in arrays
 * becomes `null`. Bytes (any typed array, a `Buffer`) arrive as a `Uint8Array`: as
 * MessagePack bytes, or `{"$bytes"}` in JSON, from an app with `codecs`.
 *
 * @example
 * ```ts
 * type T = Jsonify<{ at: Date; n: number; f: () => void }>; // { at: string; n: number }
 * ```
 */
export type Jsonify<T> = T extends string | number | boolean | null
  ? T
  : T extends undefined | AnyFunction | symbol | bigint
    ? never
    : T extends ArrayBufferView
      ? Uint8Array
      : T extends { toJSON(): infer J }
        ? Jsonify<J>
        : T extends AnyCollection
          ? Record<never, never>
          : T extends readonly (infer E)[]
            ? (E extends undefined | AnyFunction | symbol ? null : Jsonify<E>)[]
            : T extends object
              ? {
                  [K in keyof T as K extends symbol
                    ? never
                    : T[K] extends AnyFunction | symbol
                      ? never
                      : K]: Jsonify<T[K]>;
                }
              : never;

/** What the client receives for a result: `undefined` stays (no `data` key), the rest is JSON. */
// biome-ignore lint/suspicious/noConfusingVoidType: a handler that returns nothing has type void.
export type Received<T> = [T] extends [void]
  ? undefined
  : T extends undefined
    ? undefined
    : Jsonify<T>;

/** A streaming action's chunk as JSON; `never` for an action that does not stream. */
export type ReceivedChunk<T> = [T] extends [never] ? never : Received<T>;

/** The arguments after an action's name: its input, optional when it may be left out. */
export type InputArgs<TInput> = [TInput] extends [undefined]
  ? [input?: undefined]
  : Empty extends TInput
    ? [input?: TInput]
    : [input: TInput];

/** What a request may be given besides its input. */
export interface RequestOptions {
  /**
   * Cancels the request when it aborts: the server is sent a `cancel` (its handler's
   * `ctx.signal` aborts, a streaming handler's generator is stopped) and the request
   * rejects with `CANCELLED`, the signal's reason as its `cause`.
   */
  readonly signal?: AbortSignal | undefined;
}

/** The arguments after an action's name: its input, then the request's options. */
export type CallArgs<TInput> = [...InputArgs<TInput>, options?: RequestOptions];

/** Every name a client may subscribe to: plain names and concrete forms of templates. */
export type ChannelName<TChannels> = {
  [K in keyof TChannels & string]: ConcreteName<K>;
}[keyof TChannels & string];

/** The channel type a concrete name belongs to: `rooms/42` finds `rooms/{room}`. */
export type ChannelFor<TChannels extends ChannelTypes, TName extends string> = {
  [K in keyof TChannels & string]: TName extends ConcreteName<K> ? TChannels[K] : never;
}[keyof TChannels & string];

/** What came with a data frame, besides its data. */
export interface DataInfo {
  /** The concrete channel name. */
  readonly channel: string;
  /** On a channel with history: the broadcast's place in the stream. */
  readonly offset?: number | undefined;
  readonly epoch?: string | undefined;
  /**
   * `true` for a broadcast missed while the connection was down and sent again when it
   * came back (the gap was recovered); `false` for a live one, and for initial data.
   */
  readonly recovered: boolean;
}

/** Receives a channel's data frames: broadcasts, and initial data. */
export type Listener<TData> = (data: TData, info: DataInfo) => void;

/**
 * A listener, and what to do when the client comes back after a reconnect and the
 * broadcasts it missed cannot be sent (the channel's history no longer reaches back, or
 * its stream was lost): `reset` runs, so that the app reloads its state.
 */
export interface SubscriptionHandlers<TData, TPresence = unknown> {
  /** Every data frame (initial data included); may be left out to hear only presence. */
  data?: Listener<TData> | undefined;
  /** The missed broadcasts could not be recovered: reload what the channel describes. */
  reset?: ((info: { readonly channel: string }) => void) | undefined;
  /**
   * On a channel with presence: who is here, on every (re)subscribe: at most 1,000 members,
   * and how many there are. Giving `members`, `join` or `leave` asks for presence.
   */
  members?: ((members: Member<TPresence>[], count: number) => void) | undefined;
  /** A member joined (its first connection subscribed). */
  join?: ((member: Member<TPresence>) => void) | undefined;
  /** A member left (its last connection is gone). */
  leave?: ((member: { readonly user: string }) => void) | undefined;
}

/** A member of a channel with presence: its user id (or connection id) and what it shows. */
export interface Member<TPresence = unknown> {
  readonly user: string;
  readonly info: TPresence;
}

/** A listener function, or {@link SubscriptionHandlers}. */
export type SubscriptionListener<TData, TPresence = unknown> =
  | Listener<TData>
  | SubscriptionHandlers<TData, TPresence>;

/** The arguments after a channel's name: its subscribe-time parameters if any, then the listener. */
export type SubscribeArgs<TChannel extends ChannelTypes[string]> =
  Empty extends TChannel["subscribe"]
    ?
        | [listener: SubscriptionListener<Received<TChannel["data"]>, PresenceOf<TChannel>>]
        | [
            params: TChannel["subscribe"],
            listener: SubscriptionListener<Received<TChannel["data"]>, PresenceOf<TChannel>>,
          ]
    : [
        params: TChannel["subscribe"],
        listener: SubscriptionListener<Received<TChannel["data"]>, PresenceOf<TChannel>>,
      ];

/** What a channel's members show (the return of its `presence`), as JSON. */
export type PresenceOf<TChannel> = TChannel extends { readonly presence: infer P }
  ? Jsonify<P>
  : unknown;
