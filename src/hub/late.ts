/**
 * Commands the broker did not answer in time: whoever waited for one went on, but the
 * broker may still take it (a stalled primary's command is sent again to the new one). The
 * error a late command rejects with carries how it ends, so that a broadcast is not given
 * to the subscribers here twice: once without an offset when it was late, and again,
 * stamped, when the broker took it after all.
 */
const settlements = new WeakMap<object, Promise<unknown>>();

/** Marks `error` as a late command's, whose fate `settled` tells; returns it. */
export function markLate<T extends object>(error: T, settled: Promise<unknown>): T {
  settlements.set(error, settled);
  return error;
}

/** How the late command `error` stands for ends, or `undefined` when it is no late command's. */
export function lateSettlement(error: unknown): Promise<unknown> | undefined {
  return typeof error === "object" && error !== null ? settlements.get(error) : undefined;
}
