/**
 * The concrete channel names one connection is subscribed to, as small as they can be:
 * nothing, the one name itself, or a set once there are two or more. Most connections
 * hold one channel or a few, and a set is the largest thing a first subscription would
 * otherwise allocate (about 600 bytes of heap on Bun, measured with `bun:jsc`'s
 * `heapStats()`; about 130 on Node).
 */
export type HeldChannels = string | Set<string> | undefined;

/** Whether `held` includes `name`. */
export function holdsChannel(held: HeldChannels, name: string): boolean {
  return typeof held === "string" ? held === name : held?.has(name) === true;
}

/** `held` with `name` added (the same set, when it already is one). */
export function withChannel(held: HeldChannels, name: string): HeldChannels {
  if (held === undefined || held === name) return name;
  if (typeof held === "string") return new Set([held, name]);
  held.add(name);
  return held;
}

/** `held` without `name` (the same set, while two or more are left in it). */
export function withoutChannel(held: HeldChannels, name: string): HeldChannels {
  if (typeof held === "string") return held === name ? undefined : held;
  if (held === undefined || !held.delete(name)) return held;
  if (held.size > 1) return held;
  const [last] = held;
  return last;
}

/** How many names `held` includes. */
export function heldCount(held: HeldChannels): number {
  return typeof held === "string" ? 1 : (held?.size ?? 0);
}

/** The names of `held`, to iterate. */
export function heldNames(held: HeldChannels): Iterable<string> {
  return typeof held === "string" ? [held] : (held ?? []);
}
