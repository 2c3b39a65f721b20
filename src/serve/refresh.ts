// Serving a `refresh` frame: the app's `onRefresh` checks the new token, may give the
// connection a new state (for the same user), and moves its expiry.
import type { Connection } from "../context.ts";
import { errorText, internalErrorText, publicErrorText } from "../protocol/encode.ts";
import { ErrorCode, ErrorMessage, type RefreshFrame } from "../protocol/protocol.ts";
import { isThenable } from "../thenable.ts";
import { expiryOf, RefreshCredential, type RefreshedCredential } from "./credential.ts";
import type { AnsweringConnection } from "./served-connection.ts";

/** The app's refresh hook, as the session's host holds it. */
export type RefreshHook = (
  credential: RefreshedCredential,
  connection: Connection<object>,
) => object | undefined | Promise<object | undefined>;

/** What serving a refresh needs of its connection. */
export interface RefreshingConnection extends AnsweringConnection {
  /** Whether a refresh is being served (one at a time). */
  refreshing: boolean;
  /** The user it belongs to (the app's `userId`), if the app says. */
  userOf(): string | undefined;
  /** Moves (or, with `undefined`, removes) the expiry of its credential. */
  setExpiry(at: number | undefined): void;
}

/**
 * Serves a refresh: `onRefresh(credential, connection)` runs with `handlerTimeout`; what it
 * returns is the connection's new state (`undefined`: the state stays), which may not
 * change the user (`userId`); `credential.expiresAt` is the new expiry (unset: none).
 * Answered `refreshed` with `expiresIn`, or an error frame (`UNAUTHORIZED` for an
 * `UnauthorizedError`, a public error's code, else `INTERNAL_ERROR`), after which the
 * connection keeps the expiry it had. Never rejects.
 */
export function serveRefresh(
  session: RefreshingConnection,
  frame: RefreshFrame,
  onRefresh: RefreshHook,
): Promise<void> | undefined {
  const { id } = frame;
  if (session.refreshing) {
    session.answer(errorText(ErrorCode.RATE_LIMITED, ErrorMessage.refreshUnderWay, id));
    return undefined;
  }
  const credential = new RefreshCredential(frame.token);
  // Read before the hook runs: a hook that changes the state in place is caught too.
  const user = userOfQuietly(session);
  const previous = session.state;
  let outcome: unknown;
  try {
    outcome = onRefresh(credential, session);
  } catch (error) {
    answerRefused(session, frame, error);
    return undefined;
  }
  if (!isThenable(outcome)) {
    settle(session, frame, credential, outcome, user, previous);
    return undefined;
  }
  session.refreshing = true;
  const timeout = session.host.limits.handlerTimeout;
  return new Promise<void>((done) => {
    let settled = false;
    const finish = (then: () => void): void => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      session.refreshing = false;
      try {
        then();
      } catch (error) {
        session.host.reportError(error, { connection: session, phase: "refresh" });
      } finally {
        done();
      }
    };
    const timer =
      timeout === false
        ? undefined
        : setTimeout(
            () =>
              finish(() =>
                session.answer(
                  errorText(ErrorCode.HANDLER_TIMEOUT, ErrorMessage.refreshTimeout(timeout), id),
                ),
              ),
            timeout,
          );
    (timer as { unref?: () => void } | undefined)?.unref?.();
    Promise.resolve(outcome).then(
      (value) => finish(() => settle(session, frame, credential, value, user, previous)),
      (error: unknown) => finish(() => answerRefused(session, frame, error)),
    );
  });
}

/** Takes what `onRefresh` returned: the new state for the same user, and the new expiry. */
function settle(
  session: RefreshingConnection,
  frame: RefreshFrame,
  credential: RefreshCredential,
  outcome: unknown,
  user: string | undefined,
  previous: object,
): void {
  if (session.closed) return;
  if (outcome !== undefined && (outcome === null || typeof outcome !== "object")) {
    answerRefused(session, frame, new TypeError("onRefresh must return the state or nothing."));
    return;
  }
  if (outcome !== undefined) session.state = outcome as typeof previous;
  if (userOfQuietly(session) !== user) {
    session.state = previous;
    session.answer(errorText(ErrorCode.FORBIDDEN, ErrorMessage.refreshChangesUser, frame.id));
    // Changed in place, the old state cannot be put back: the connection may not go on
    // as someone else.
    if (userOfQuietly(session) !== user) session.close(1008, "Refresh changed the user");
    return;
  }
  const at = expiryOf(credential.expiresAt);
  session.setExpiry(at);
  if (session.closed) return; // an expiry already past closed it
  const refreshed: { type: "refreshed"; expiresIn?: number; id?: typeof frame.id } = {
    type: "refreshed",
  };
  if (at !== undefined) refreshed.expiresIn = Math.max(0, at - Date.now());
  if (frame.id !== undefined) refreshed.id = frame.id;
  session.answer(JSON.stringify(refreshed));
}

function userOfQuietly(session: RefreshingConnection): string | undefined {
  try {
    return session.userOf();
  } catch (error) {
    session.host.reportError(error, { connection: session, phase: "refresh" });
    return undefined;
  }
}

/** A refused refresh: a public error's code and message, else INTERNAL_ERROR (reported). */
function answerRefused(session: RefreshingConnection, frame: RefreshFrame, error: unknown): void {
  if (session.closed) return;
  const text = publicErrorText(error, frame.id, undefined);
  if (text !== undefined) {
    session.answer(text);
    return;
  }
  session.host.reportError(error, { connection: session, phase: "refresh" });
  session.answer(internalErrorText(frame.id));
}
