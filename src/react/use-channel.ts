// A channel's broadcasts in a component: the latest, or a state folded from them by a
// reducer; whether the last came from history (recovered), and how many times the client
// could not recover what it missed (resets: the state starts again from `initial`).
import { useEffect, useRef, useState } from "react";
import type { DataInfo } from "../client/client-types.ts";
import { useSocketAPIContext } from "./context.ts";

/** Options of `useChannel`. */
export interface ChannelOptions<TData, TState> {
  /** The subscribe-time parameters (`data` of the subscribe frame), if the channel takes them. */
  params?: Record<string, unknown> | undefined;
  /** Folds each broadcast into the state; without it the state is the latest broadcast. */
  reducer?: ((state: TState, data: TData, info: DataInfo) => TState) | undefined;
  /** The state before any broadcast, and after a reset. */
  initial?: TState | undefined;
  /** `false` does not subscribe (yet); default `true`. */
  enabled?: boolean | undefined;
}

/** What `useChannel` returns. */
export interface ChannelState<TState> {
  /** The latest broadcast, or the reducer's state. */
  readonly data: TState;
  /** Whether the subscription is confirmed by the server. */
  readonly ready: boolean;
  /** Whether the last broadcast was one missed and recovered from history. */
  readonly recovered: boolean;
  /** How many times what was missed could not be recovered (the state started over). */
  readonly resets: number;
}

/** The untyped hook; `createSocketAPIHooks` gives it its types. */
export function useChannel(
  name: string,
  options: ChannelOptions<unknown, unknown> = {},
): ChannelState<unknown> {
  const { channels } = useSocketAPIContext();
  const enabled = options.enabled ?? true;
  const [state, setState] = useState<ChannelState<unknown>>(() => ({
    data: options.initial,
    ready: false,
    recovered: false,
    resets: 0,
  }));
  // The reducer and initial state of the last render, read when a broadcast comes.
  const latest = useRef(options);
  latest.current = options;
  const paramsKey = JSON.stringify(options.params ?? null);
  useEffect(() => {
    if (!channels || !enabled) return;
    const params = paramsKey === "null" ? undefined : JSON.parse(paramsKey);
    let live = true;
    const { ready, stop } = channels.listen(
      name,
      params,
      {
        data: (data, info) => {
          if (!live) return;
          setState((previous) => {
            const { reducer } = latest.current;
            return {
              ...previous,
              data: reducer ? reducer(previous.data, data, info) : data,
              recovered: info.recovered,
            };
          });
        },
        reset: () => {
          if (!live) return;
          setState((previous) => ({
            ...previous,
            data: latest.current.initial,
            resets: previous.resets + 1,
          }));
        },
      },
      false,
    );
    void ready.then(() => {
      if (live) setState((previous) => ({ ...previous, ready: true }));
    });
    return () => {
      live = false;
      stop();
    };
  }, [channels, name, paramsKey, enabled]);
  return state;
}
