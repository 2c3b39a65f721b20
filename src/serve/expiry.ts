// When a connection's credential expires: a timer (or, where timers do not survive, the
// adapter's own clock: a Durable Object's alarm) that closes the connection then, unless a
// refresh moved it.
import { CloseCode } from "../protocol/protocol.ts";

/** The longest delay a timer takes (2^31 - 1 ms, about 24.8 days): longer ones are re-armed. */
const MAX_TIMER_MS = 2_147_483_647;

/** What the expiry closes, and whether the runtime keeps its timer. */
export interface ExpiringConnection {
  readonly closed: boolean;
  close(code: number, reason: string): void;
}

/**
 * A connection's expiry: at most one timer, unref'd (it never keeps a process alive), moved
 * by each refresh, cleared on close. Without a timer (`timed: false`), the adapter calls
 * {@link Expiry.expireIfDue} when its own clock says so.
 */
export class Expiry {
  readonly #connection: ExpiringConnection;
  readonly #timed: boolean;
  #at: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(connection: ExpiringConnection, timed: boolean) {
    this.#connection = connection;
    this.#timed = timed;
  }

  /** When the credential expires (ms since the epoch), or `undefined` for never. */
  get at(): number | undefined {
    return this.#at;
  }

  /** Sets (or, with `undefined`, removes) the expiry; one already past closes at once. */
  set(at: number | undefined): void {
    this.#at = at;
    this.#clearTimer();
    if (at === undefined) return;
    if (!this.#timed) {
      this.expireIfDue(Date.now());
      return;
    }
    this.#arm();
  }

  /** Closes the connection with 4001 if its expiry is at or before `now`; says whether it did. */
  expireIfDue(now: number): boolean {
    if (this.#at === undefined || this.#at > now || this.#connection.closed) return false;
    this.#at = undefined;
    this.#clearTimer();
    this.#connection.close(CloseCode.tokenExpired, TOKEN_EXPIRED_REASON);
    return true;
  }

  /** Stops the timer: the connection closed. */
  clear(): void {
    this.#clearTimer();
  }

  #arm(): void {
    const at = this.#at;
    if (at === undefined) return;
    const wait = at - Date.now();
    if (wait <= 0) {
      this.expireIfDue(Date.now());
      return;
    }
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        if (!this.expireIfDue(Date.now())) this.#arm();
      },
      Math.min(wait, MAX_TIMER_MS),
    );
    (this.#timer as { unref?: () => void }).unref?.();
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** The close reason of an expired credential (with close code 4001). */
const TOKEN_EXPIRED_REASON = "Token expired";
