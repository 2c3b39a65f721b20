/** How many frames a connection may send: a steady rate and a burst above it. */
export interface RateLimit {
  /** Frames per second, on average (default 1000). */
  messagesPerSecond?: number | undefined;
  /** Frames that may come at once above the rate (default: one second's worth). */
  burst?: number | undefined;
  /**
   * Refused frames before the connection is closed with 1008 as abusive (default 100).
   * Refusals are forgiven at this many per second, so only a client that keeps sending
   * well over the limit is closed.
   */
  maxViolations?: number | undefined;
}

/** A rate limit with every value set. */
export interface ResolvedRateLimit {
  readonly messagesPerSecond: number;
  readonly burst: number;
  readonly maxViolations: number;
}

/** The default rate limit: 1000 frames per second per connection, 1000 at once. */
export const DEFAULT_RATE_LIMIT: ResolvedRateLimit = {
  messagesPerSecond: 1000,
  burst: 1000,
  maxViolations: 100,
};

/**
 * A token bucket for one connection: it holds up to `burst` tokens, refills at
 * `messagesPerSecond`, and each frame takes one. Three numbers per connection.
 */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #updated: number;

  constructor(limit: ResolvedRateLimit, now: number = Date.now()) {
    this.#rate = limit.messagesPerSecond / 1000;
    this.#burst = limit.burst;
    this.#tokens = limit.burst;
    this.#updated = now;
  }

  /** Takes a token for one frame; `false` when there is none left. */
  take(now: number = Date.now()): boolean {
    if (now > this.#updated) {
      this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#updated) * this.#rate);
      this.#updated = now;
    }
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/**
 * The refusals (rate, queue) one connection earned, forgiven over time: a burst over a
 * limit passes, a client that keeps sending well over it piles them up and is closed.
 */
export class Violations {
  #count = 0;
  #at = 0;

  /** Counts one refusal and returns how many stand, forgiving `forgivenPerSecond`. */
  add(forgivenPerSecond: number, now: number = Date.now()): number {
    const forgiven = ((now - this.#at) / 1000) * forgivenPerSecond;
    this.#count = Math.max(0, this.#count - forgiven) + 1;
    this.#at = now;
    return this.#count;
  }
}

/** The rate limit an app's option asks for, defaults filled in; `false` for none. */
export function resolveRateLimit(option: RateLimit | false | undefined): ResolvedRateLimit | false {
  if (option === false) return false;
  const messagesPerSecond = option?.messagesPerSecond ?? DEFAULT_RATE_LIMIT.messagesPerSecond;
  return {
    messagesPerSecond,
    burst: option?.burst ?? messagesPerSecond,
    maxViolations: option?.maxViolations ?? DEFAULT_RATE_LIMIT.maxViolations,
  };
}
