/**
 * Channel history: the broadcasts of a channel declared with `history`, kept for a while
 * with an increasing offset, so that a client that was away can get what it missed.
 *
 * @module
 */

/**
 * How much of a channel's broadcasts to keep, per concrete channel name (`rooms/42` and
 * `rooms/43` each have their own stream).
 */
export interface HistoryOptions {
  /** The most broadcasts kept: older ones are dropped. Also the most one recovery sends. */
  readonly size: number;
  /** How long a broadcast is kept, in milliseconds. */
  readonly ttl: number;
  /**
   * The most bytes of broadcasts kept (their text's length): older ones are dropped past
   * it. Default 1 MiB.
   */
  readonly maxBytes?: number | undefined;
}

/** How many bytes of broadcasts a channel keeps without `history.maxBytes`. */
export const DEFAULT_HISTORY_BYTES = 1024 * 1024;

/**
 * A place in a channel's stream: the offset of its last broadcast there, and the stream's
 * epoch, which changes when the stream was lost (a memory store restarted, a history
 * expired): offsets of two epochs do not compare.
 */
export interface StreamPosition {
  readonly offset: number;
  readonly epoch: string;
}

/** What a store answers a subscribe to a channel with history. */
export interface Recovery {
  /** Where the stream is now: the subscriber goes on from here. */
  readonly position: StreamPosition;
  /**
   * Whether every broadcast after the `since` position is in `frames`: `false` when the
   * epoch changed, the history no longer reaches back, or it would send more than the
   * bound. `undefined` when no position was given.
   */
  readonly recovered: boolean | undefined;
  /** The broadcasts after `since`, stamped, oldest first (empty unless recovered). */
  readonly frames: readonly string[];
}

/**
 * Where an app keeps its channels' history. A *local* store keeps what reaches its own
 * place (the memory store, a Durable Object's storage): the hub stamps each broadcast as it
 * delivers it there. A *shared* store is one stream for every instance (Redis Streams): it
 * stamps each broadcast once and carries it to every instance in offset order itself.
 */
export type HistoryStore = LocalHistoryStore | SharedHistoryStore;

/** A store for one place: stamps synchronously, as the hub delivers. */
export interface LocalHistoryStore {
  readonly shared: false;
  /** Keeps `frame` (a serialized `data` frame) as the stream's next broadcast; returns it stamped. */
  append(channel: string, frame: string, options: HistoryOptions): string;
  /** The stream's position and, after `since`, what the subscriber missed (at most `maxBytes`). */
  recover(
    channel: string,
    since: StreamPosition | undefined,
    options: HistoryOptions,
    maxBytes: number,
  ): Recovery;
  /** Drops a channel's stream: this place stopped hearing all of its broadcasts. */
  forget(channel: string): void;
  /**
   * Whether the store keeps a stream for `channel` (something was broadcast on it within
   * its ttl). A channel whose stream is empty is not kept heard when it is left.
   */
  holds?(channel: string): boolean;
  /** The stream's position and its last `count` kept broadcasts, stamped, oldest first. */
  latest?(channel: string, count: number, options: HistoryOptions): Latest;
}

/** What a store keeps of a stream's end: where it is, and its last broadcasts. */
export interface Latest {
  readonly position: StreamPosition;
  /** Stamped `data` frames, oldest first. */
  readonly frames: readonly string[];
}

/** One stream for every instance: stamps once, and carries each broadcast to all of them. */
export interface SharedHistoryStore {
  readonly shared: true;
  /**
   * Keeps `frame` as the stream's next broadcast and carries it, stamped, to every
   * instance with subscribers of `channel` (this one included, through its relay), as a
   * targeted frame when it is for everyone but one connection (`except`); resolves with
   * its offset.
   */
  publish(
    channel: string,
    frame: string,
    options: HistoryOptions,
    except?: { readonly except: string },
  ): Promise<number>;
  /** As {@link LocalHistoryStore.recover}. */
  recover(
    channel: string,
    since: StreamPosition | undefined,
    options: HistoryOptions,
    maxBytes: number,
  ): Promise<Recovery>;
  /** As {@link LocalHistoryStore.latest}. */
  latest?(channel: string, count: number, options: HistoryOptions): Promise<Latest>;
}
