import type { StreamPosition } from "./history.ts";

/**
 * A serialized `data` frame with its place in the stream: `{"type":"data",...}` becomes
 * `{"type":"data",...,"offset":7,"epoch":"k3x9-1"}`. Epochs are made of letters, digits
 * and `-`, so they need no escaping.
 */
export function stampedFrame(frame: string, offset: number, epoch: string): string {
  return `${frame.slice(0, -1)},"offset":${offset},"epoch":"${epoch}"}`;
}

/** The offset a stamped frame carries, read from its end; `undefined` for an unstamped one. */
export function offsetOf(frame: string): number | undefined {
  const at = frame.lastIndexOf(',"offset":');
  if (at < 0) return undefined;
  const offset = Number.parseInt(frame.slice(at + 10), 10);
  return Number.isSafeInteger(offset) ? offset : undefined;
}

/** The offset and epoch a stamped frame carries, read from its end; `undefined` for an unstamped one. */
export function positionOf(frame: string): StreamPosition | undefined {
  const offset = offsetOf(frame);
  const at = frame.lastIndexOf(',"epoch":"');
  if (offset === undefined || at < 0) return undefined;
  const end = frame.indexOf('"', at + 10);
  return end < 0 ? undefined : { offset, epoch: frame.slice(at + 10, end) };
}

/**
 * The position a client sent as `since`, when it is one: an object with a whole
 * non-negative `offset` and a string `epoch` of at most 64 characters.
 */
export function sincePosition(value: unknown): StreamPosition | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const { offset, epoch } = value as Record<string, unknown>;
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) return undefined;
  if (typeof epoch !== "string" || epoch.length > 64) return undefined;
  return { offset: offset as number, epoch };
}

/** A fresh epoch: random, short, and safe in JSON without escaping. */
export function newEpoch(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 12);
}
