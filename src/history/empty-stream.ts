import type { StreamPosition } from "./history.ts";

/**
 * Positions in streams that nothing was broadcast on yet, which a store keeps nothing for:
 * a subscribe to a thousand such names leaves no trace. Their epoch says when it was given
 * (`e-<tag>-<ms in base 36>`), so that a client coming back with it can be told whether it
 * missed anything, with no state per name:
 *
 * - no stream yet, less than a `ttl` after the position was given: nothing was broadcast
 *   since (a broadcast makes a stream, which lives at least a `ttl`): recovered, nothing
 *   to send;
 * - a stream made at or after that moment and less than a `ttl` later: it holds every
 *   broadcast since (an earlier stream would have lived a `ttl`), from offset 1 on;
 * - anything else: `recovered: false`.
 *
 * The tag names the store and, where a store stops hearing a channel (a place that forgets
 * a stream it no longer hears in full), a generation of the names that share the channel's
 * bucket: forgetting bumps it, so positions given before are refused.
 */

/** How many buckets of names share a generation: a forget refuses the positions of 1/256. */
export const GENERATION_BUCKETS = 256;

/** The epoch of an empty stream, given at `now` by a store whose tag is `tag`. */
export function emptyEpoch(tag: string, now: number): string {
  return `e-${tag}-${Math.max(0, Math.floor(now)).toString(36)}`;
}

/**
 * When `since` is an empty stream's position given by a store with this tag (offset 0):
 * the moment it was given; else `undefined`.
 */
export function emptySince(since: StreamPosition | undefined, tag: string): number | undefined {
  if (since === undefined || since.offset !== 0) return undefined;
  const head = `e-${tag}-`;
  const { epoch } = since;
  if (!epoch.startsWith(head)) return undefined;
  const given = Number.parseInt(epoch.slice(head.length), 36);
  return Number.isSafeInteger(given) && epoch.slice(head.length) === given.toString(36)
    ? given
    : undefined;
}

/**
 * Whether a client holding an empty stream's position given at `given` missed nothing,
 * when there is still no stream at `now`.
 */
export function nothingMissedSince(given: number, now: number, ttl: number): boolean {
  return given <= now && now < given + ttl;
}

/**
 * Whether a stream made at `created` holds everything broadcast after an empty stream's
 * position given at `given`: made then or later, less than a `ttl` after.
 */
export function madeSince(given: number, created: number, ttl: number): boolean {
  return created >= given && created < given + ttl;
}

/** The bucket of a channel's name, for its generation: FNV-1a over its UTF-16 units. */
export function bucketOf(channel: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < channel.length; i++) {
    hash ^= channel.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % GENERATION_BUCKETS;
}
