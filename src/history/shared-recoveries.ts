import type { HistoryOptions, Recovery, SharedHistoryStore, StreamPosition } from "./history.ts";
import { recoveryOf } from "./recovery.ts";

/** One subscribe's recovery waiting for the next read of its channel. */
interface Asked {
  readonly since: StreamPosition | undefined;
  readonly maxBytes: number;
  readonly options: HistoryOptions;
  resolve(recovery: Recovery): void;
  reject(error: unknown): void;
}

/** A channel with a read in flight, and the recoveries asked since it started. */
interface ChannelReads {
  waiting: Asked[];
}

const keyOf = (since: StreamPosition | undefined) =>
  since === undefined ? "" : `${since.offset}\u0000${since.epoch}`;

function bytesOf(frames: readonly string[]): number {
  let bytes = 0;
  for (const frame of frames) bytes += frame.length;
  return bytes;
}

/**
 * Recoveries from a shared history store (Redis) that share reads: the first subscribe
 * to a channel reads at once; the ones asked while that read is in flight wait for it to
 * end and then share one read, which starts after each of them was added to the channel,
 * so that none misses a broadcast between the read and its subscription. Waiting
 * subscribes that gave the same position get the same answer; those that gave a later one
 * in the same epoch get the end of the earliest one's answer. A reconnect storm of N
 * clients of a channel costs about two reads of it, not N.
 *
 * @example
 * ```ts
 * const recoveries = new SharedRecoveries(store); // store: a SharedHistoryStore
 * const [a, b] = await Promise.all([
 *   recoveries.recover("news", { offset: 4, epoch: "e" }, { size: 100, ttl: 60_000 }, 1024),
 *   recoveries.recover("news", { offset: 4, epoch: "e" }, { size: 100, ttl: 60_000 }, 1024),
 * ]);
 * ```
 */
export class SharedRecoveries {
  readonly #store: SharedHistoryStore;
  readonly #channels = new Map<string, ChannelReads>();

  constructor(store: SharedHistoryStore) {
    this.#store = store;
  }

  /** As {@link SharedHistoryStore.recover}, sharing the read with concurrent ones. */
  recover(
    channel: string,
    since: StreamPosition | undefined,
    options: HistoryOptions,
    maxBytes: number,
  ): Promise<Recovery> {
    return new Promise<Recovery>((resolve, reject) => {
      const asked: Asked = { since, maxBytes, options, resolve, reject };
      const reads = this.#channels.get(channel);
      if (reads) {
        reads.waiting.push(asked);
        return;
      }
      const started: ChannelReads = { waiting: [] };
      this.#channels.set(channel, started);
      this.#read(channel, started, [asked]);
    });
  }

  /** How many channels have a read in flight (each is released when its reads end). */
  get reading(): number {
    return this.#channels.size;
  }

  /** Reads for `group`, then for what waited meanwhile, until nothing waits. */
  #read(channel: string, reads: ChannelReads, group: Asked[]): void {
    this.#answer(channel, group).finally(() => {
      const next = reads.waiting;
      if (next.length === 0) {
        this.#channels.delete(channel);
        return;
      }
      reads.waiting = [];
      this.#read(channel, reads, next);
    });
  }

  /** One read per epoch given (the earliest offset of it), and its answer to each. */
  async #answer(channel: string, group: Asked[]): Promise<void> {
    const byEpoch = new Map<string | undefined, Asked[]>();
    for (const asked of group) {
      const epoch = asked.since?.epoch;
      const same = byEpoch.get(epoch);
      if (same) same.push(asked);
      else byEpoch.set(epoch, [asked]);
    }
    await Promise.all([...byEpoch.values()].map((same) => this.#answerEpoch(channel, same)));
  }

  async #answerEpoch(channel: string, same: Asked[]): Promise<void> {
    let earliest = same[0] as Asked;
    let maxBytes = 0;
    for (const asked of same) {
      if ((asked.since?.offset ?? 0) < (earliest.since?.offset ?? 0)) earliest = asked;
      maxBytes = Math.max(maxBytes, asked.maxBytes);
    }
    let recovery: Recovery;
    try {
      recovery = await this.#store.recover(channel, earliest.since, earliest.options, maxBytes);
    } catch (error) {
      for (const asked of same) asked.reject(error);
      return;
    }
    const alone: Asked[] = [];
    for (const asked of same) {
      const answer = derived(recovery, earliest.since, asked);
      if (answer) asked.resolve(answer);
      else alone.push(asked);
    }
    // Not to be told from this read (the earliest position was not recovered, or the
    // stream began after it): one read per position given.
    const byPosition = new Map<string, Asked[]>();
    for (const asked of alone) {
      const key = keyOf(asked.since);
      const at = byPosition.get(key);
      if (at) at.push(asked);
      else byPosition.set(key, [asked]);
    }
    await Promise.all(
      [...byPosition.values()].map(async (at) => {
        const first = at[0] as Asked;
        const bytes = Math.max(...at.map((asked) => asked.maxBytes));
        try {
          const own = await this.#store.recover(channel, first.since, first.options, bytes);
          for (const asked of at) asked.resolve(withinBytes(own, asked.maxBytes));
        } catch (error) {
          for (const asked of at) asked.reject(error);
        }
      }),
    );
  }
}

/** `recovery` as sent to a subscriber that may take at most `maxBytes` of it. */
function withinBytes(recovery: Recovery, maxBytes: number): Recovery {
  if (recovery.recovered !== true || bytesOf(recovery.frames) <= maxBytes) return recovery;
  return { position: recovery.position, recovered: false, frames: [] };
}

/**
 * The answer to `asked` from a read from `from`, when it can be told from it: the same
 * position, or a later one in a stream the read recovered whole from `from`.
 */
function derived(
  recovery: Recovery,
  from: StreamPosition | undefined,
  asked: Asked,
): Recovery | undefined {
  const since = asked.since;
  if (keyOf(since) === keyOf(from)) return withinBytes(recovery, asked.maxBytes);
  if (recovery.recovered !== true || since === undefined || from === undefined) return undefined;
  // The read's frames follow `from` in the same stream: the end of them follows `since`.
  if (recovery.position.epoch !== from.epoch) return undefined;
  const skip = since.offset - from.offset;
  return recoveryOf(recovery.position, since, asked.maxBytes, () => ({
    first: since.offset + 1,
    frames: recovery.frames.slice(skip),
  }));
}
