import { CloseCode } from "../protocol/protocol.ts";
import type { Session } from "./session.ts";

/** Resolves with `promise`, or after `ms` with nothing. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    promise,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  if (timer !== undefined) clearTimeout(timer);
}

/** How long frames already taken get to be answered in a graceful shutdown, by default. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 5000;

/**
 * Shuts sessions down gracefully: they stop taking frames, those already taken get up to
 * `timeout` ms (default 5000) to be answered, then every session is closed with 1001
 * (server shutting down). Resolves once all have closed, or after `closeTimeout` ms more.
 */
export async function closeSessions(
  sessions: Iterable<Session<object>>,
  timeout: number | undefined = DEFAULT_SHUTDOWN_TIMEOUT_MS,
  closeTimeout = 2000,
): Promise<void> {
  const list = [...sessions];
  if (list.length === 0) return;
  await within(Promise.all(list.map((session) => session.drain())), timeout);
  const closed = list.map((session) => {
    session.close(CloseCode.goingAway, "Server shutting down");
    return session.whenClosed();
  });
  await within(Promise.all(closed), closeTimeout);
}
