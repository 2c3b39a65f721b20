/**
 * Whether `value` is an async iterable (what an `async function*` returns): an action
 * whose handler returns one streams its values. Never throws, whatever `value` is (a
 * Proxy's traps may).
 */
export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  try {
    return (
      value !== null &&
      (typeof value === "object" || typeof value === "function") &&
      typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === "function"
    );
  } catch {
    return false;
  }
}
