// Calling an action from a component: its last call's pending state, data and error.
import { useCallback, useEffect, useRef, useState } from "react";
import { ClientErrorCode, SocketAPIClientError } from "../client/client-error.ts";
import { useSocketAPIContext } from "./context.ts";

/** What `useAction` returns: `call`, and the state of the last call. */
export interface ActionState<TArgs extends unknown[], TOutput> {
  /** Calls the action; resolves with its result (rejects as the client does). */
  readonly call: (...args: TArgs) => Promise<TOutput>;
  /** Whether the last call is under way. */
  readonly pending: boolean;
  /** The last call's result, once it came. */
  readonly data: TOutput | undefined;
  /** The last call's error, if it failed. */
  readonly error: SocketAPIClientError | undefined;
  /** Forgets the last call's data and error. */
  readonly reset: () => void;
}

interface CallState {
  pending: boolean;
  data: unknown;
  error: SocketAPIClientError | undefined;
}

const IDLE: CallState = { pending: false, data: undefined, error: undefined };

/** The untyped hook; `createSocketAPIHooks` gives it its types. */
export function useAction(name: string): ActionState<unknown[], unknown> {
  const { client } = useSocketAPIContext();
  const [state, setState] = useState<CallState>(IDLE);
  const latest = useRef(0);
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);
  const call = useCallback(
    async (...args: unknown[]): Promise<unknown> => {
      if (!client) {
        throw new SocketAPIClientError(
          ClientErrorCode.CLOSED,
          "socketapi/react: the provider is not mounted yet.",
        );
      }
      const id = ++latest.current;
      setState((previous) => ({ ...previous, pending: true }));
      const settle = (next: CallState) => {
        if (mounted.current && id === latest.current) setState(next);
      };
      try {
        const data = await (
          client.action as (name: string, ...args: unknown[]) => Promise<unknown>
        )(name, ...args);
        settle({ pending: false, data, error: undefined });
        return data;
      } catch (error) {
        settle({ pending: false, data: undefined, error: error as SocketAPIClientError });
        throw error;
      }
    },
    [client, name],
  );
  const reset = useCallback(() => setState(IDLE), []);
  return { call, pending: state.pending, data: state.data, error: state.error, reset };
}
