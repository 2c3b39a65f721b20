import type { HistoryOptions, LocalHistoryStore, Recovery, StreamPosition } from "./history.ts";
import { recoveryOf } from "./recovery.ts";
import { newEpoch, stampedFrame } from "./stamp.ts";

/** One kept broadcast. */
interface Entry {
  readonly frame: string;
  /** When it was kept (ms since the epoch). */
  readonly at: number;
}

/** One concrete channel's stream: its epoch, its last offset, and its kept broadcasts. */
interface Stream {
  readonly epoch: string;
  /** The offset of the last broadcast (0 before the first). */
  top: number;
  /** Kept broadcasts, oldest first, from index `start` on: offsets `top - length + 1 + start ...`. */
  entries: Entry[];
  start: number;
  /** When it was last appended to or created. */
  touched: number;
  ttl: number;
}

/** How often, at most, streams whose history expired are looked for and dropped. */
const SWEEP_INTERVAL_MS = 1000;

/**
 * Channel history in this process's memory: the default store, for one process (or one
 * place). Each stream gets its own epoch when it is made, so a restart, or a stream dropped
 * after its `ttl`, tells a returning client `recovered: false` instead of a wrong answer.
 * Memory is bounded by `size` broadcasts per channel, and streams whose `ttl` passed with
 * nothing new are dropped.
 *
 * @example
 * ```ts
 * import { MemoryHistory } from "socketapi";
 *
 * const history = new MemoryHistory();
 * const frame = history.append("news", '{"type":"data","channel":"news","data":1}', {
 *   size: 100,
 *   ttl: 60_000,
 * });
 * console.log(frame); // {"type":"data","channel":"news","data":1,"offset":1,"epoch":"..."}
 * ```
 */
export class MemoryHistory implements LocalHistoryStore {
  readonly shared = false;
  readonly #streams = new Map<string, Stream>();
  readonly #now: () => number;
  #swept = 0;

  /** `now` is for tests: the clock, in ms. */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  append(channel: string, frame: string, options: HistoryOptions): string {
    const now = this.#now();
    this.#sweep(now);
    const stream = this.#stream(channel, options, now);
    stream.top++;
    stream.touched = now;
    const stamped = stampedFrame(frame, stream.top, stream.epoch);
    stream.entries.push({ frame: stamped, at: now });
    if (stream.entries.length - stream.start > options.size) stream.start++;
    this.#expire(stream, options, now);
    return stamped;
  }

  recover(
    channel: string,
    since: StreamPosition | undefined,
    options: HistoryOptions,
    maxBytes: number,
  ): Recovery {
    const now = this.#now();
    this.#sweep(now);
    const stream = this.#stream(channel, options, now);
    this.#expire(stream, options, now);
    const position = { offset: stream.top, epoch: stream.epoch };
    return recoveryOf(position, since, maxBytes, () => {
      // The kept entries after `since` (offsets are contiguous up to `top`).
      const { entries } = stream;
      const from = Math.max(stream.start, entries.length - (stream.top - (since?.offset ?? 0)));
      return {
        first: stream.top - (entries.length - from) + 1,
        frames: entries.slice(from).map((entry) => entry.frame),
      };
    });
  }

  forget(channel: string): void {
    this.#streams.delete(channel);
  }

  /** How many streams are kept: for tests and metrics. */
  get streams(): number {
    return this.#streams.size;
  }

  #stream(channel: string, options: HistoryOptions, now: number): Stream {
    let stream = this.#streams.get(channel);
    if (!stream) {
      stream = { epoch: newEpoch(), top: 0, entries: [], start: 0, touched: now, ttl: options.ttl };
      this.#streams.set(channel, stream);
    }
    return stream;
  }

  /** Drops broadcasts older than `ttl`, and compacts the array now and then. */
  #expire(stream: Stream, options: HistoryOptions, now: number): void {
    const { entries } = stream;
    while (
      stream.start < entries.length &&
      (entries[stream.start] as Entry).at + options.ttl <= now
    ) {
      stream.start++;
    }
    if (stream.start > 32 && stream.start * 2 > entries.length) {
      stream.entries = entries.slice(stream.start);
      stream.start = 0;
    }
  }

  /** Drops the streams that had nothing new for their `ttl`: all their broadcasts expired. */
  #sweep(now: number): void {
    if (now - this.#swept < SWEEP_INTERVAL_MS) return;
    this.#swept = now;
    for (const [channel, stream] of this.#streams) {
      if (stream.touched + stream.ttl <= now) this.#streams.delete(channel);
    }
  }
}
