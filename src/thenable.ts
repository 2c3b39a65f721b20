/**
 * Whether `value` is a thenable, the test `await` makes. Reading `then` runs user code (a
 * getter, a Proxy trap) and may throw: callers run it inside their `try`.
 */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function"
  );
}
