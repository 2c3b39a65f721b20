import { bucketOf, emptyEpoch, GENERATION_BUCKETS } from "./empty-stream.ts";
import {
  DEFAULT_HISTORY_BYTES,
  type HistoryOptions,
  type Latest,
  type LocalHistoryStore,
  type Recovery,
  type StreamPosition,
} from "./history.ts";
import { recoveryOfStream } from "./recovery.ts";
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
  /** When it was made (its first broadcast). */
  readonly created: number;
  /** The offset of the last broadcast. */
  top: number;
  /** Kept broadcasts, oldest first, from index `start` on: offsets `top - length + 1 + start ...`. */
  entries: Entry[];
  start: number;
  /** The length of the kept broadcasts' text. */
  bytes: number;
  /** When it was last appended to. */
  touched: number;
  ttl: number;
}

/** How often, at most, streams whose history expired are looked for and dropped. */
const SWEEP_INTERVAL_MS = 1000;

/** How many bytes of broadcasts a memory store keeps in all, by default. */
const DEFAULT_STORE_BYTES = 128 * 1024 * 1024;

/** Options of {@link MemoryHistory}. */
export interface MemoryHistoryOptions {
  /**
   * The most bytes of broadcasts kept across every channel (their text's length); past it,
   * the streams appended to least recently are dropped whole. Default 128 MiB.
   */
  maxBytes?: number | undefined;
  /** The clock, in ms: for tests. */
  now?: (() => number) | undefined;
}

/**
 * Channel history in this process's memory: the default store, for one process (or one
 * place). Each stream gets its own epoch when it is made, so a restart, or a stream dropped
 * after its `ttl`, tells a returning client `recovered: false` instead of a wrong answer.
 * A stream is made by its first broadcast: subscribing to a channel nothing was broadcast
 * on keeps nothing. Memory is bounded by each channel's `size` and `maxBytes`, by the
 * store's `maxBytes` in all, and streams whose `ttl` passed with nothing new are dropped.
 *
 * @example
 * ```ts
 * import { MemoryHistory } from "socketapi";
 *
 * const history = new MemoryHistory({ maxBytes: 64 * 1024 * 1024 });
 * const frame = history.append("news", '{"type":"data","channel":"news","data":1}', {
 *   size: 100,
 *   ttl: 60_000,
 * });
 * console.log(frame); // {"type":"data","channel":"news","data":1,"offset":1,"epoch":"..."}
 * ```
 */
export class MemoryHistory implements LocalHistoryStore {
  readonly shared = false;
  /** Streams, the one appended to least recently first. */
  readonly #streams = new Map<string, Stream>();
  readonly #now: () => number;
  readonly #maxBytes: number;
  #bytes = 0;
  #swept = 0;
  /** This store among others: positions it gave mean nothing to another (a restart). */
  readonly #id = newEpoch().slice(0, 8);
  /** Bumped for a bucket of names when one of them is forgotten or dropped early. */
  readonly #generations = new Uint32Array(GENERATION_BUCKETS);

  /** A clock in ms (for tests), or the options. */
  constructor(options: MemoryHistoryOptions | (() => number) = {}) {
    const resolved = typeof options === "function" ? { now: options } : options;
    this.#now = resolved.now ?? Date.now;
    this.#maxBytes = resolved.maxBytes ?? DEFAULT_STORE_BYTES;
  }

  append(channel: string, frame: string, options: HistoryOptions): string {
    const now = this.#now();
    this.#sweep(now);
    let stream = this.#live(channel, now);
    if (stream) this.#streams.delete(channel);
    else {
      stream = {
        epoch: newEpoch(),
        created: now,
        top: 0,
        entries: [],
        start: 0,
        bytes: 0,
        touched: now,
        ttl: options.ttl,
      };
    }
    // Last in the map: the most recently appended to.
    this.#streams.set(channel, stream);
    stream.top++;
    stream.touched = now;
    stream.ttl = options.ttl;
    const stamped = stampedFrame(frame, stream.top, stream.epoch);
    stream.entries.push({ frame: stamped, at: now });
    stream.bytes += stamped.length;
    this.#bytes += stamped.length;
    const maxBytes = options.maxBytes ?? DEFAULT_HISTORY_BYTES;
    while (
      stream.start < stream.entries.length &&
      (stream.entries.length - stream.start > options.size || stream.bytes > maxBytes)
    ) {
      this.#drop(stream);
    }
    this.#expire(stream, options, now);
    this.#bound(channel);
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
    const stream = this.#live(channel, now);
    if (stream) this.#expire(stream, options, now);
    const { size, ttl } = options;
    return recoveryOfStream(
      stream,
      since,
      { tag: this.#tag(channel), now, ttl, size, maxBytes },
      () => {
        // The kept entries after `since` (offsets are contiguous up to `top`).
        const { entries, top, start } = stream as Stream;
        const from = Math.max(start, entries.length - (top - (since?.offset ?? 0)));
        return {
          first: top - (entries.length - from) + 1,
          frames: entries.slice(from).map((entry) => entry.frame),
        };
      },
    );
  }

  latest(channel: string, count: number, options: HistoryOptions): Latest {
    const now = this.#now();
    const stream = this.#live(channel, now);
    if (!stream) {
      return { position: { offset: 0, epoch: emptyEpoch(this.#tag(channel), now) }, frames: [] };
    }
    this.#expire(stream, options, now);
    const from = Math.max(stream.start, stream.entries.length - Math.max(0, count));
    return {
      position: { offset: stream.top, epoch: stream.epoch },
      frames: stream.entries.slice(from).map((entry) => entry.frame),
    };
  }

  forget(channel: string): void {
    this.#remove(channel);
    // Its empty positions given so far are refused: broadcasts may be missed from now on.
    const bucket = bucketOf(channel);
    this.#generations[bucket] = (this.#generations[bucket] as number) + 1;
  }

  holds(channel: string): boolean {
    return this.#live(channel, this.#now()) !== undefined;
  }

  /** How many streams are kept: for tests and metrics. */
  get streams(): number {
    return this.#streams.size;
  }

  /** How many bytes of broadcasts are kept in all: for tests and metrics. */
  get bytes(): number {
    return this.#bytes;
  }

  /** What this store's empty positions of `channel` carry. */
  #tag(channel: string): string {
    return `${this.#id}${(this.#generations[bucketOf(channel)] as number).toString(36)}`;
  }

  /** The channel's stream, unless its ttl passed with nothing new (then it is dropped). */
  #live(channel: string, now: number): Stream | undefined {
    const stream = this.#streams.get(channel);
    if (stream && stream.touched + stream.ttl <= now) {
      this.#remove(channel);
      return undefined;
    }
    return stream;
  }

  #remove(channel: string): void {
    const stream = this.#streams.get(channel);
    if (!stream) return;
    this.#bytes -= stream.bytes;
    this.#streams.delete(channel);
  }

  /** Drops a stream's oldest kept broadcast. */
  #drop(stream: Stream): void {
    const entry = stream.entries[stream.start] as Entry;
    stream.start++;
    stream.bytes -= entry.frame.length;
    this.#bytes -= entry.frame.length;
  }

  /**
   * Past the store's bytes, drops the streams appended to least recently (never `keep`, the
   * one just appended to): early, so their names' empty positions are refused from now on.
   */
  #bound(keep: string): void {
    for (const channel of this.#streams.keys()) {
      if (this.#bytes <= this.#maxBytes || channel === keep) return;
      this.forget(channel);
    }
  }

  /** Drops broadcasts older than `ttl`, and compacts the array now and then. */
  #expire(stream: Stream, options: HistoryOptions, now: number): void {
    const { entries } = stream;
    while (
      stream.start < entries.length &&
      (entries[stream.start] as Entry).at + options.ttl <= now
    ) {
      this.#drop(stream);
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
      if (stream.touched + stream.ttl <= now) this.#remove(channel);
    }
  }
}
