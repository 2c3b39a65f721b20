// Reading a streaming action from a component: its chunks so far, and its end. It starts
// when the component mounts (or its input changes) and is cancelled on unmount.
import { useCallback, useEffect, useRef, useState } from "react";
import type { SocketAPIClientError } from "../client/client-error.ts";
import type { ActionStream } from "../client/stream-reader.ts";
import { useSocketAPIContext } from "./context.ts";

/** What `useStream` returns. */
export interface StreamState<TChunk, TOutput> {
  /** Every chunk received so far, in order. */
  readonly chunks: readonly TChunk[];
  /** Whether the stream ended (with its result, or an error). */
  readonly done: boolean;
  /** What the handler returned, once it ended. */
  readonly result: TOutput | undefined;
  readonly error: SocketAPIClientError | undefined;
  /** Cancels it on the server (the handler's `ctx.signal` aborts). */
  readonly cancel: () => void;
}

interface Progress {
  chunks: unknown[];
  done: boolean;
  result: unknown;
  error: SocketAPIClientError | undefined;
}

const NOTHING: Progress = { chunks: [], done: false, result: undefined, error: undefined };

/** Options of `useStream`. */
export interface StreamOptions {
  /** `false` does not start it (yet); default `true`. */
  enabled?: boolean | undefined;
}

/** The untyped hook; `createSocketAPIHooks` gives it its types. */
export function useStream(
  name: string,
  input: unknown,
  options: StreamOptions = {},
): StreamState<unknown, unknown> {
  const { client } = useSocketAPIContext();
  const enabled = options.enabled ?? true;
  const [progress, setProgress] = useState<Progress>(NOTHING);
  const running = useRef<ActionStream<unknown, unknown> | undefined>(undefined);
  // The input by value: a new object with the same content does not restart the stream.
  const key = JSON.stringify(input ?? null);
  useEffect(() => {
    if (!client || !enabled) return;
    const args = key === "null" ? [] : [JSON.parse(key)];
    const stream = (
      client.stream as (name: string, ...args: unknown[]) => ActionStream<unknown, unknown>
    )(name, ...args);
    running.current = stream;
    let live = true;
    setProgress(NOTHING);
    void (async () => {
      try {
        for await (const chunk of stream) {
          if (live)
            setProgress((previous) => ({ ...previous, chunks: [...previous.chunks, chunk] }));
        }
        const result = await stream.result;
        if (live) setProgress((previous) => ({ ...previous, done: true, result }));
      } catch (error) {
        if (live) {
          setProgress((previous) => ({
            ...previous,
            done: true,
            error: error as SocketAPIClientError,
          }));
        }
      }
    })();
    return () => {
      live = false;
      running.current = undefined;
      stream.cancel();
    };
  }, [client, name, key, enabled]);
  const cancel = useCallback(() => running.current?.cancel(), []);
  return { ...progress, cancel };
}
