// The client's POSTs of one fallback session, fed in the order it sent them. Each carries a
// sequence number: a POST that reached another instance comes over the relay and may
// arrive after the next one, which came here directly, so a POST ahead of its turn waits
// (a few, for a few seconds); one seen already (the client retried it) is dropped.

/** How many POSTs may wait for the one before them. */
export const MAX_HELD_POSTS = 16;

/** How long a gap may stay open before the session is given up (ms). */
export const POST_GAP_TIMEOUT = 10_000;

/** What became of a POST: fed (now or with those before it), held, seen already, or too far ahead. */
export type PostOutcome = "fed" | "held" | "duplicate" | "refused";

/** Orders the POSTs of one session by their sequence numbers, from 0. */
export class OrderedPosts {
  #next = 0;
  readonly #held = new Map<number, string>();
  #heldBytes = 0;
  #gapTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #feed: (body: string) => void;
  readonly #maxHeldBytes: number;
  readonly #gapNeverFilled: () => void;

  constructor(feed: (body: string) => void, maxHeldBytes: number, gapNeverFilled: () => void) {
    this.#feed = feed;
    this.#maxHeldBytes = maxHeldBytes;
    this.#gapNeverFilled = gapNeverFilled;
  }

  /** Takes POST `seq` with its body. */
  take(seq: number, body: string): PostOutcome {
    if (!Number.isSafeInteger(seq) || seq < 0) return "refused";
    if (seq < this.#next || this.#held.has(seq)) return "duplicate";
    if (seq > this.#next) {
      if (
        seq - this.#next > MAX_HELD_POSTS ||
        this.#held.size >= MAX_HELD_POSTS ||
        this.#heldBytes + body.length > this.#maxHeldBytes
      ) {
        return "refused";
      }
      this.#held.set(seq, body);
      this.#heldBytes += body.length;
      this.#gapTimer ??= setTimeout(() => this.#gapNeverFilled(), POST_GAP_TIMEOUT);
      (this.#gapTimer as { unref?: () => void }).unref?.();
      return "held";
    }
    this.#feed(body);
    this.#next += 1;
    for (let held = this.#held.get(this.#next); held !== undefined; ) {
      this.#held.delete(this.#next);
      this.#heldBytes -= held.length;
      this.#feed(held);
      this.#next += 1;
      held = this.#held.get(this.#next);
    }
    if (this.#held.size === 0 && this.#gapTimer !== undefined) {
      clearTimeout(this.#gapTimer);
      this.#gapTimer = undefined;
    }
    return "fed";
  }

  /** Lets go of what waits (the session closed). */
  clear(): void {
    this.#held.clear();
    this.#heldBytes = 0;
    if (this.#gapTimer !== undefined) clearTimeout(this.#gapTimer);
    this.#gapTimer = undefined;
  }
}
