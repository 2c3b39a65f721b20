// Latencies as a histogram of fixed buckets, a quarter of an octave wide (each bound 19 %
// above the one before, from 1 µs to about 70 s): recording one is an increment, merging
// instances' histograms is adding counts, and a quantile read from them is within 19 % of
// the true one.

/** How many buckets: bucket `i` holds latencies up to 2^(i/4) µs. */
export const LATENCY_BUCKETS = 105;

/** The bucket of a latency in seconds. */
export function latencyBucket(seconds: number): number {
  const micros = seconds * 1e6;
  if (!(micros > 1)) return 0;
  return Math.min(LATENCY_BUCKETS - 1, Math.ceil(Math.log2(micros) * 4));
}

/** A histogram's non-empty buckets, as `[bucket, count]` pairs: what travels between instances. */
export type SparseHistogram = [bucket: number, count: number][];

/** Adds `counts` (sparse) into `into` (dense). */
export function addHistogram(into: number[], counts: SparseHistogram): void {
  for (const [bucket, count] of counts) {
    if (Number.isInteger(bucket) && bucket >= 0 && bucket < LATENCY_BUCKETS && count > 0) {
      into[bucket] = (into[bucket] ?? 0) + count;
    }
  }
}

/** A dense histogram's non-empty buckets. */
export function sparseOf(counts: readonly number[]): SparseHistogram {
  const sparse: SparseHistogram = [];
  counts.forEach((count, bucket) => {
    if (count > 0) sparse.push([bucket, count]);
  });
  return sparse;
}

/**
 * The `q` quantile (0 to 1) of a dense histogram in milliseconds: the geometric middle of the
 * bucket it falls in; `undefined` for an empty histogram.
 */
export function quantileMs(counts: readonly number[], q: number): number | undefined {
  let total = 0;
  for (const count of counts) total += count ?? 0;
  if (total === 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let bucket = 0; bucket < counts.length; bucket++) {
    seen += counts[bucket] ?? 0;
    if (seen >= rank) return bucket === 0 ? 0.001 : 2 ** ((bucket - 0.5) / 4) / 1000;
  }
  return undefined;
}
