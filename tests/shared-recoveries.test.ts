// Recoveries of one channel asked at once share reads of a shared history store: answers
// the same as one read each, reads started only after every waiting subscribe joined.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type {
  HistoryOptions,
  Recovery,
  SharedHistoryStore,
  StreamPosition,
} from "../src/history/history.ts";
import { recoveryOf } from "../src/history/recovery.ts";
import { SharedRecoveries } from "../src/history/shared-recoveries.ts";

const OPTIONS: HistoryOptions = { size: 20, ttl: 60_000 };
const EPOCH = "e1";

/** A shared store of one stream that keeps its last `size` frames; reads wait for `gate`. */
class CountingStore implements SharedHistoryStore {
  readonly shared = true;
  reads = 0;
  failNext = false;
  top = 0;
  frames: string[] = [];
  /** Resolves the reads in flight, when the test holds them back. */
  #held: (() => void)[] = [];
  hold = false;

  append(count: number): void {
    for (let i = 0; i < count; i++) {
      this.top++;
      this.frames.push(`{"type":"data","channel":"c","data":${this.top},"offset":${this.top}}`);
      if (this.frames.length > OPTIONS.size) this.frames.shift();
    }
  }

  release(): void {
    const held = this.#held;
    this.#held = [];
    for (const resolve of held) resolve();
  }

  async publish(): Promise<number> {
    this.append(1);
    return this.top;
  }

  /** The answer of one read now, for comparison. */
  answer(since: StreamPosition | undefined, maxBytes: number): Recovery {
    const kept = [...this.frames];
    const keptFirst = this.top - kept.length + 1;
    return recoveryOf({ offset: this.top, epoch: EPOCH }, since, maxBytes, () => {
      const start = Math.max(keptFirst, (since?.offset ?? this.top) + 1);
      const frames = kept.slice(start - keptFirst);
      return { first: frames.length > 0 ? start : undefined, frames };
    });
  }

  async recover(
    _channel: string,
    since: StreamPosition | undefined,
    _options: HistoryOptions,
    maxBytes: number,
  ): Promise<Recovery> {
    this.reads++;
    // The stream is read when the read starts: what is appended later is not in it.
    const answer = this.answer(since, maxBytes);
    if (this.failNext) {
      this.failNext = false;
      await Promise.resolve();
      throw new Error("broker away");
    }
    if (this.hold) await new Promise<void>((resolve) => this.#held.push(resolve));
    else await new Promise((resolve) => setTimeout(resolve, 1));
    return answer;
  }
}

/** Lets the reads' bookkeeping after their last answer run. */
const settled = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("shared recoveries", () => {
  it("answers 200 subscribes of one channel from one position with two reads, each the same as its own read", async () => {
    const store = new CountingStore();
    store.append(10);
    const recoveries = new SharedRecoveries(store);
    const since = { offset: 6, epoch: EPOCH };
    const answers = await Promise.all(
      Array.from({ length: 200 }, () => recoveries.recover("c", since, OPTIONS, 10_000)),
    );
    expect(store.reads).toBe(2);
    const alone = store.answer(since, 10_000);
    expect(alone.recovered).toBe(true);
    expect(alone.frames).toHaveLength(4);
    for (const answer of answers) expect(answer).toEqual(alone);
    await settled();
    expect(recoveries.reading).toBe(0);
  });

  it("starts the shared read only after the waiting subscribes joined: a broadcast made meanwhile is in it", async () => {
    const store = new CountingStore();
    store.append(3);
    store.hold = true;
    const recoveries = new SharedRecoveries(store);
    const since = { offset: 1, epoch: EPOCH };
    const first = recoveries.recover("c", since, OPTIONS, 10_000);
    await Promise.resolve();
    // Joined while the first read is in flight, after offset 4 was stamped.
    store.append(1);
    const second = recoveries.recover("c", since, OPTIONS, 10_000);
    store.hold = false;
    store.release();
    expect((await first).position.offset).toBe(3);
    const late = await second;
    expect(late.position.offset).toBe(4);
    expect(late.frames).toHaveLength(3);
    expect(store.reads).toBe(2);
  });

  it("tells later positions of the same epoch from the earliest one's read, within each one's bytes", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 40 }),
        fc.array(
          fc.record({
            offset: fc.option(fc.integer({ min: 0, max: 45 }), { nil: undefined }),
            epoch: fc.constantFrom(EPOCH, "old"),
            maxBytes: fc.constantFrom(0, 60, 200, 10_000),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        async (broadcasts, asked) => {
          const store = new CountingStore();
          store.append(broadcasts);
          const recoveries = new SharedRecoveries(store);
          // A first read in flight, so that every one of `asked` waits and shares.
          const opening = recoveries.recover("c", undefined, OPTIONS, 0);
          const sinces = asked.map(({ offset, epoch }) =>
            offset === undefined ? undefined : { offset, epoch },
          );
          const answers = await Promise.all(
            asked.map((one, i) => recoveries.recover("c", sinces[i], OPTIONS, one.maxBytes)),
          );
          await opening;
          asked.forEach((one, i) => {
            expect(answers[i]).toEqual(store.answer(sinces[i], one.maxBytes));
          });
          // At most one read per epoch given, plus one per position not told from it.
          const positions = new Set(sinces.map((since) => JSON.stringify(since ?? null)));
          expect(store.reads).toBeLessThanOrEqual(1 + positions.size);
          await settled();
          expect(recoveries.reading).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("rejects the subscribes of a failed read; those that waited meanwhile read again", async () => {
    const store = new CountingStore();
    store.append(5);
    const recoveries = new SharedRecoveries(store);
    store.failNext = true;
    const since = { offset: 2, epoch: EPOCH };
    const failed = recoveries.recover("c", since, OPTIONS, 10_000);
    const waited = [recoveries.recover("c", since, OPTIONS, 10_000)];
    store.failNext = false;
    await expect(failed).rejects.toThrow("broker away");
    expect((await Promise.all(waited))[0]?.recovered).toBe(true);
    store.failNext = true;
    await expect(recoveries.recover("c", since, OPTIONS, 10_000)).rejects.toThrow("broker away");
    expect((await recoveries.recover("c", since, OPTIONS, 10_000)).frames).toHaveLength(3);
    await settled();
    expect(recoveries.reading).toBe(0);
  });

  it("keeps one channel's reads apart from another's", async () => {
    const store = new CountingStore();
    store.append(2);
    const recoveries = new SharedRecoveries(store);
    await Promise.all(
      ["a", "b", "c"].flatMap((channel) =>
        Array.from({ length: 5 }, () => recoveries.recover(channel, undefined, OPTIONS, 0)),
      ),
    );
    expect(store.reads).toBe(6);
  });
});
