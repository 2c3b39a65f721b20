import type { RequestId } from "../protocol/protocol.ts";

/** Why a running request stops before its end: the client's `cancel`, or the connection closed. */
export type Cancellation = "client" | "closed";

/**
 * The requests of one connection that are running and may be cancelled: actions waiting
 * for their handler (at most the app's `concurrency`) and streams (at most `maxStreams`),
 * by channel and id. Each one leaves when it ends, so that what it holds is bounded by
 * those two limits and let go with the request.
 */
export class RunningRequests {
  readonly #byKey = new Map<string, Set<(why: Cancellation) => void>>();
  #streams = 0;
  #onNoStreams: (() => void)[] | undefined;

  /** How many streams are open. */
  get streams(): number {
    return this.#streams;
  }

  /**
   * Keeps `cancel` for the request `id` on `channel` until the returned function is called
   * (the request ended).
   */
  track(channel: string, id: RequestId, cancel: (why: Cancellation) => void): () => void {
    const key = keyOf(channel, id);
    let cancels = this.#byKey.get(key);
    if (!cancels) {
      cancels = new Set();
      this.#byKey.set(key, cancels);
    }
    cancels.add(cancel);
    return () => {
      const kept = this.#byKey.get(key);
      if (!kept?.delete(cancel)) return;
      if (kept.size === 0) this.#byKey.delete(key);
    };
  }

  /** Cancels the requests `id` on `channel` that are running; says whether there were any. */
  cancel(channel: string, id: RequestId): boolean {
    const cancels = this.#byKey.get(keyOf(channel, id));
    if (!cancels) return false;
    for (const cancel of [...cancels]) cancel("client");
    return true;
  }

  /** The connection closed: every running request stops. */
  cancelAll(): void {
    for (const cancels of [...this.#byKey.values()]) {
      for (const cancel of [...cancels]) cancel("closed");
    }
  }

  /** A stream opened. */
  streamOpened(): void {
    this.#streams++;
  }

  /** A stream ended. */
  streamEnded(): void {
    this.#streams--;
    if (this.#streams === 0) for (const resolve of this.#onNoStreams?.splice(0) ?? []) resolve();
  }

  /** Resolves once no stream is open. */
  streamsEnded(): Promise<void> {
    if (this.#streams === 0) return Promise.resolve();
    this.#onNoStreams ??= [];
    const waiting = this.#onNoStreams;
    return new Promise((resolve) => waiting.push(resolve));
  }
}

/** A request as one key: its channel and id, apart (`1` and `"1"` are different ids). */
function keyOf(channel: string, id: RequestId): string {
  return `${typeof id === "number" ? "n" : "s"}${id}\u0000${channel}`;
}
