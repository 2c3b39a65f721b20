/** A streaming action's answer as the app reads it: its chunks, then its result. */
import { ClientErrorCode, SocketAPIClientError } from "./client-error.ts";

/**
 * The answer of a streaming action, read with `for await`: each chunk the server sends,
 * in order; the loop ends with the stream, and throws what the request fails with (the
 * server's error, `DISCONNECTED` when the connection dropped: a stream is never resumed
 * from the start). Leaving the loop early (`break`, `return`, a throw) cancels the request
 * on the server.
 *
 * @example
 * ```ts
 * const reply = client.stream("ask", { question: "Why is the sky blue?" });
 * for await (const word of reply) process.stdout.write(word);
 * console.log(await reply.result); // what the handler returned
 * ```
 */
export interface ActionStream<TChunk, TOutput> extends AsyncIterable<TChunk> {
  /** Resolves with what the handler returned once the stream ended; rejects as the loop throws. */
  readonly result: Promise<TOutput>;
  /** Cancels the request (the server stops its handler); the loop ends with `CANCELLED`. */
  cancel(): void;
}

/** Starts the request: its chunks go to `onChunk`; it is cancelled when `signal` aborts. */
type StartRequest = (onChunk: (data: unknown) => void, signal: AbortSignal) => Promise<unknown>;

/** The chunks received and not yet read, and whoever waits for the next one. */
export class StreamReader<TChunk, TOutput> implements ActionStream<TChunk, TOutput> {
  readonly result: Promise<TOutput>;
  readonly #chunks: unknown[] = [];
  readonly #controller = new AbortController();
  #waiting: ((result: IteratorResult<TChunk>) => void) | undefined;
  #failWaiting: ((error: unknown) => void) | undefined;
  #settled: { readonly error: unknown } | "done" | undefined;

  constructor(start: StartRequest, signal?: AbortSignal | undefined) {
    const controller = this.#controller;
    const forward = () => controller.abort(signal?.reason);
    if (signal?.aborted) forward();
    else signal?.addEventListener("abort", forward, { once: true });
    this.result = start((data) => this.#received(data), controller.signal).then(
      (value) => {
        signal?.removeEventListener("abort", forward);
        this.#settle("done");
        return value as TOutput;
      },
      (error: unknown) => {
        signal?.removeEventListener("abort", forward);
        this.#settle({ error });
        throw error;
      },
    );
    // Reading the loop is enough: a failure it threw need not be awaited again here.
    this.result.catch(() => {});
  }

  cancel(): void {
    if (this.#settled === undefined) {
      this.#controller.abort(
        new SocketAPIClientError(ClientErrorCode.CANCELLED, "The stream was cancelled."),
      );
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<TChunk> {
    return {
      next: () => this.#next(),
      return: async () => {
        this.cancel();
        return { done: true, value: undefined };
      },
    };
  }

  #next(): Promise<IteratorResult<TChunk>> {
    if (this.#chunks.length > 0) {
      return Promise.resolve({ done: false, value: this.#chunks.shift() as TChunk });
    }
    const settled = this.#settled;
    if (settled === "done") return Promise.resolve({ done: true, value: undefined });
    if (settled) return Promise.reject(settled.error);
    return new Promise((resolve, reject) => {
      this.#waiting = resolve;
      this.#failWaiting = reject;
    });
  }

  #received(data: unknown): void {
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = undefined;
      this.#failWaiting = undefined;
      waiting({ done: false, value: data as TChunk });
    } else this.#chunks.push(data);
  }

  #settle(settled: { readonly error: unknown } | "done"): void {
    this.#settled = settled;
    const waiting = this.#waiting;
    const failWaiting = this.#failWaiting;
    this.#waiting = undefined;
    this.#failWaiting = undefined;
    if (settled === "done") waiting?.({ done: true, value: undefined });
    else failWaiting?.(settled.error);
  }
}
