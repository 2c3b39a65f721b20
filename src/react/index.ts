/**
 * React hooks over the typed client, typed from the server's app like the client itself:
 * a provider holding one client, and hooks to call actions, read streams, listen to
 * channels and presence, and watch the connection. React 18 or 19 (an optional peer
 * dependency: nothing of it is loaded by any other entry point). Correct under
 * StrictMode's double mount (no second subscribe, no second socket), and on a server: no
 * socket is opened while rendering, hydration opens it.
 *
 * @example
 * ```ts
 * import { createSocketAPIHooks } from "socketapi/react";
 * import type app from "./server.ts";
 *
 * export const { SocketAPIProvider, useAction, useChannel, usePresence, useStream, useConnection } =
 *   createSocketAPIHooks<typeof app>();
 * ```
 *
 * @module
 */
import type { ReactNode } from "react";
import type {
  ActionsOf,
  CallArgs,
  ChannelFor,
  ChannelName,
  ChannelsOf,
  PresenceOf,
  Received,
  ReceivedChunk,
} from "../client/client-types.ts";
import { SocketAPIProvider as Provider, type SocketAPIProviderProps } from "./provider.ts";
import { type ActionState, useAction } from "./use-action.ts";
import { type ChannelOptions, type ChannelState, useChannel } from "./use-channel.ts";
import { type ConnectionState, useConnection } from "./use-connection.ts";
import { type PresenceState, usePresence } from "./use-presence.ts";
import { type StreamOptions, type StreamState, useStream } from "./use-stream.ts";

export type {
  ActionState,
  ChannelOptions,
  ChannelState,
  ConnectionState,
  PresenceState,
  SocketAPIProviderProps,
  StreamOptions,
  StreamState,
};

type Actions<App> = ActionsOf<App>;
type ActionName<App> = keyof Actions<App> & string;
type DataOf<App, TName extends string> = Received<ChannelFor<ChannelsOf<App>, TName>["data"]>;

/** The hooks of one app, typed from `typeof app`. */
export interface SocketAPIHooks<App> {
  /** Holds one client (one socket) for every hook under it. */
  SocketAPIProvider: (props: SocketAPIProviderProps) => ReactNode;
  /**
   * An action: `call(input)`, and the last call's `pending`, `data` and `error`.
   *
   * @example
   * ```ts
   * const add = useAction("add_numbers");
   * // <button onClick={() => add.call({ a: 5, b: 3 })}>{add.pending ? "…" : add.data}</button>
   * ```
   */
  useAction<TName extends ActionName<App>>(
    name: TName,
  ): ActionState<CallArgs<Actions<App>[TName]["input"]>, Received<Actions<App>[TName]["output"]>>;
  /**
   * A streaming action, read from mount (and again when `input` changes), cancelled on
   * unmount: its chunks so far, `done`, its `result`.
   */
  useStream<TName extends ActionName<App>>(
    name: TName,
    input: Actions<App>[TName]["input"],
    options?: StreamOptions,
  ): StreamState<
    ReceivedChunk<Actions<App>[TName]["chunk"]>,
    Received<Actions<App>[TName]["output"]>
  >;
  /**
   * A channel: its latest broadcast, or the state a `reducer` folds from them (from
   * `initial`, again after a reset), with `ready`, `recovered` and `resets`.
   */
  useChannel<TName extends ChannelName<ChannelsOf<App>>, TState = DataOf<App, TName> | undefined>(
    name: TName,
    options?: ChannelOptions<DataOf<App, TName>, TState>,
  ): ChannelState<TState>;
  /** Who is on a channel with presence: its members, joins and leaves applied. */
  usePresence<TName extends ChannelName<ChannelsOf<App>>>(
    name: TName,
    params?: Record<string, unknown>,
  ): PresenceState<PresenceOf<ChannelFor<ChannelsOf<App>, TName>>>;
  /** The connection's `status`, and the `refusal` when the server refused it. */
  useConnection(): ConnectionState;
}

/**
 * The provider and hooks for `App` (`typeof app`, a type-only import of the server).
 *
 * @example
 * ```ts
 * import { createSocketAPIHooks } from "socketapi/react";
 * import type app from "./server.ts";
 *
 * const { SocketAPIProvider, useChannel } = createSocketAPIHooks<typeof app>();
 * ```
 */
export function createSocketAPIHooks<App>(): SocketAPIHooks<App> {
  return {
    SocketAPIProvider: Provider,
    useAction: useAction as unknown as SocketAPIHooks<App>["useAction"],
    useStream: useStream as unknown as SocketAPIHooks<App>["useStream"],
    useChannel: useChannel as unknown as SocketAPIHooks<App>["useChannel"],
    usePresence: usePresence as unknown as SocketAPIHooks<App>["usePresence"],
    useConnection,
  };
}

export { Provider as SocketAPIProvider };
