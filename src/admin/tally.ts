// What the dashboard counts while someone watches it: the telemetry hooks add to a Tally,
// and every second the instance takes its counts (and starts again from zero). Only
// templates, codes and limit names are keys, never a concrete name or an id: the maps are
// bounded by the app's declarations and the closed tables, and capped besides.
import type { RefusedBy } from "../observe/telemetry.ts";
import { LATENCY_BUCKETS, latencyBucket, type SparseHistogram, sparseOf } from "./latency.ts";

/** At most this many distinct keys in one map of a tally; the rest are counted as `(other)`. */
export const MAX_TALLY_KEYS = 256;

/** The key of everything past {@link MAX_TALLY_KEYS}. */
export const OTHER_KEY = "(other)";

/** One action's answers in one interval. */
export interface ActionCounts {
  count: number;
  errors: number;
  latency: SparseHistogram;
}

/** An instance's counts over one interval: what a sample carries. */
export interface TallyCounts {
  /** How long the interval was, in ms. */
  ms: number;
  received: number;
  sent: number;
  opened: number;
  closed: number;
  chunks: number;
  cancelled: number;
  errors: Record<string, number>;
  refusals: Record<string, number>;
  actions: Record<string, ActionCounts>;
}

/** The counters the telemetry hooks add to. */
export class Tally {
  received = 0;
  sent = 0;
  opened = 0;
  closed = 0;
  chunks = 0;
  cancelled = 0;
  #errors = new Map<string, number>();
  #refusals = new Map<string, number>();
  #actions = new Map<string, { count: number; errors: number; latency: number[] }>();
  #since: number;

  constructor(now: number = Date.now()) {
    this.#since = now;
  }

  /** A frame written to a client, an error frame with its code. */
  sentFrame(code: string | undefined): void {
    this.sent++;
    if (code !== undefined) bump(this.#errors, code);
  }

  refused(limit: RefusedBy): void {
    bump(this.#refusals, limit);
  }

  /** A declared action answered after `seconds`, with `errorCode` when it failed. */
  action(name: string, seconds: number, errorCode: string | undefined): void {
    let counts = this.#actions.get(name);
    if (counts === undefined) {
      const key = this.#actions.size < MAX_TALLY_KEYS ? name : OTHER_KEY;
      counts = this.#actions.get(key);
      if (counts === undefined) {
        counts = { count: 0, errors: 0, latency: new Array<number>(LATENCY_BUCKETS).fill(0) };
        this.#actions.set(key, counts);
      }
    }
    counts.count++;
    if (errorCode !== undefined) counts.errors++;
    const bucket = latencyBucket(seconds);
    counts.latency[bucket] = (counts.latency[bucket] ?? 0) + 1;
  }

  /** The counts since the last take (or since the tally began), and zero again. */
  take(now: number = Date.now()): TallyCounts {
    const actions: Record<string, ActionCounts> = {};
    for (const [name, counts] of this.#actions) {
      actions[name] = {
        count: counts.count,
        errors: counts.errors,
        latency: sparseOf(counts.latency),
      };
    }
    const taken: TallyCounts = {
      ms: Math.max(1, now - this.#since),
      received: this.received,
      sent: this.sent,
      opened: this.opened,
      closed: this.closed,
      chunks: this.chunks,
      cancelled: this.cancelled,
      errors: Object.fromEntries(this.#errors),
      refusals: Object.fromEntries(this.#refusals),
      actions,
    };
    this.received = this.sent = this.opened = this.closed = this.chunks = this.cancelled = 0;
    this.#errors = new Map();
    this.#refusals = new Map();
    this.#actions = new Map();
    this.#since = now;
    return taken;
  }
}

function bump(counts: Map<string, number>, key: string): void {
  const known = counts.get(key);
  if (known !== undefined) counts.set(key, known + 1);
  else if (counts.size < MAX_TALLY_KEYS) counts.set(key, 1);
  else counts.set(OTHER_KEY, (counts.get(OTHER_KEY) ?? 0) + 1);
}
