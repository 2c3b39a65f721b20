/**
 * Errors already told to the app's error hook where they happened (a relay reports an
 * outage once, not once per broadcast it loses): whoever catches one again does not tell
 * it twice.
 */
const reported = new WeakSet<object>();

/** Marks `error` as told; returns it. */
export function markReported<T extends object>(error: T): T {
  reported.add(error);
  return error;
}

/** Whether `error` was told already. */
export function wasReported(error: unknown): boolean {
  return typeof error === "object" && error !== null && reported.has(error);
}
