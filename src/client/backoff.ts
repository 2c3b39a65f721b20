/** How the client waits between reconnection attempts. */
export interface ReconnectOptions {
  /** The first wait, in ms (default 500). */
  initialDelay?: number | undefined;
  /** The longest wait, in ms (default 10,000). */
  maxDelay?: number | undefined;
  /** What each wait is multiplied by (default 2). */
  factor?: number | undefined;
  /** How many attempts in a row before giving up (default: never give up). */
  maxAttempts?: number | undefined;
  /**
   * How long a connection must stay open, in ms, before the waits start again from
   * `initialDelay` (default 5,000). A server that accepts and closes at once (a crash loop,
   * an overload) is retried ever more slowly, never more than once per `maxDelay / 2` in
   * the end.
   */
  resetAfter?: number | undefined;
}

/** How long a connection must stay open before the waits start again: default. */
export const RESET_AFTER_MS = 5000;

/**
 * The wait before reconnection attempt `attempt` (0 for the first): exponential, capped,
 * with full jitter between half and all of it, so that many clients dropped at once do not
 * all come back in the same instant.
 */
export function reconnectDelay(
  attempt: number,
  options: ReconnectOptions = {},
  random: () => number = Math.random,
): number {
  const { initialDelay = 500, maxDelay = 10_000, factor = 2 } = options;
  const ceiling = Math.min(maxDelay, initialDelay * factor ** attempt);
  return Math.round(ceiling * (0.5 + random() / 2));
}
