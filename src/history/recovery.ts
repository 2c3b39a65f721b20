import type { Recovery, StreamPosition } from "./history.ts";

/**
 * A store's answer to a subscribe from `since`, the same for every store: where the
 * stream is, and the broadcasts after `since` when the store still keeps every one of them
 * (same epoch, none trimmed or expired) within `maxBytes`; else `recovered: false`.
 * `kept` reads what the store keeps after `since`, oldest first, with the offset of the
 * first: called only when there is something to recover.
 *
 * @example
 * ```ts
 * const recovery = recoveryOf({ offset: 3, epoch: "e" }, { offset: 1, epoch: "e" }, 1024, () => ({
 *   first: 2,
 *   frames: ['{"type":"data","channel":"c","data":2}', '{"type":"data","channel":"c","data":3}'],
 * }));
 * console.log(recovery.recovered); // true
 * ```
 */
export function recoveryOf(
  position: StreamPosition,
  since: StreamPosition | undefined,
  maxBytes: number,
  kept: () => { readonly first: number | undefined; readonly frames: readonly string[] },
): Recovery {
  if (since === undefined) return { position, recovered: undefined, frames: [] };
  const missed = position.offset - since.offset;
  const refused: Recovery = { position, recovered: false, frames: [] };
  if (since.epoch !== position.epoch || missed < 0) return refused;
  if (missed === 0) return { position, recovered: true, frames: [] };
  const { first, frames } = kept();
  // Every missed broadcast must still be kept, the oldest first.
  if (first !== since.offset + 1 || frames.length !== missed) return refused;
  let bytes = 0;
  for (const frame of frames) {
    bytes += frame.length;
    if (bytes > maxBytes) return refused;
  }
  return { position, recovered: true, frames };
}
