import { emptyEpoch, emptySince, madeSince, nothingMissedSince } from "./empty-stream.ts";
import type { Recovery, StreamPosition } from "./history.ts";

/**
 * A store's answer to a subscribe from `since`, the same for every store: where the
 * stream is, and the broadcasts after `since` when the store still keeps every one of them
 * (same epoch, none trimmed or expired) within `maxBytes` and `size`; else
 * `recovered: false`. `kept` reads what the store keeps after `since`, oldest first, with
 * the offset of the first: called only when there is something to recover that may be
 * sent, so that an answer known in advance reads nothing.
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
  size = Number.POSITIVE_INFINITY,
): Recovery {
  if (since === undefined) return { position, recovered: undefined, frames: [] };
  const missed = position.offset - since.offset;
  const refused: Recovery = { position, recovered: false, frames: [] };
  if (since.epoch !== position.epoch || missed < 0) return refused;
  if (missed === 0) return { position, recovered: true, frames: [] };
  // More than the stream keeps, or nothing may be sent: known without reading.
  if (missed > size || maxBytes <= 0) return refused;
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

/** A stream as a store keeps it, for {@link recoveryOfStream}. */
export interface KeptStream {
  readonly epoch: string;
  /** The offset of its last broadcast. */
  readonly top: number;
  /** When it was made (ms), by the clock the store reads `now` from. */
  readonly created: number;
}

/**
 * {@link recoveryOf} for a store that keeps nothing for a stream nothing was broadcast on
 * (docs of `empty-stream.ts`): `stream` is `undefined` then, and the position given is an
 * empty stream's, with the store's `tag`, at `now`.
 */
export function recoveryOfStream(
  stream: KeptStream | undefined,
  since: StreamPosition | undefined,
  recovery: {
    readonly tag: string;
    readonly now: number;
    readonly ttl: number;
    readonly size: number;
    readonly maxBytes: number;
  },
  kept: () => { readonly first: number | undefined; readonly frames: readonly string[] },
): Recovery {
  const { tag, now, ttl, size, maxBytes } = recovery;
  const given = emptySince(since, tag);
  if (!stream) {
    const position = { offset: 0, epoch: emptyEpoch(tag, now) };
    if (since === undefined) return { position, recovered: undefined, frames: [] };
    return {
      position,
      recovered: given !== undefined && nothingMissedSince(given, now, ttl),
      frames: [],
    };
  }
  const position = { offset: stream.top, epoch: stream.epoch };
  // Given before this stream was made, and it holds every broadcast since: from its start.
  const from =
    given !== undefined && madeSince(given, stream.created, ttl)
      ? { offset: 0, epoch: stream.epoch }
      : since;
  return recoveryOf(position, from, maxBytes, kept, size);
}
