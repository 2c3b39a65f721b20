import type { StreamPosition } from "../history/history.ts";
import { offsetOf } from "../history/stamp.ts";
import type { Subscriber } from "../hub/subscriber.ts";
import type { SubscribingConnection } from "./served-connection.ts";

/**
 * Stands in for a connection on a channel with history while its subscribe reads the
 * stream: it holds what is broadcast meanwhile, then sends what the read did not cover and
 * puts the connection in its place. So a broadcast made during the read is neither lost
 * nor sent twice. It holds at most `maxBytes` (the connection's send-buffer limit): a
 * client that cannot take more is dropped, as a slow one would be.
 *
 * With a shared store (Redis), the read's answer and the live copies come over two
 * connections to the broker, in no given order between them: a live copy of a broadcast
 * the read already sent may come after it. Until the live copies reach the read's
 * position, it stays in place and drops those at or below it.
 */
export class RecoveringSubscriber implements Subscriber {
  readonly #session: SubscribingConnection;
  readonly #channel: string;
  readonly #maxBytes: number;
  readonly #held: string[] = [];
  #bytes = 0;
  /** Once handed over: the position live copies are dropped at or below. */
  #floor: StreamPosition | undefined;
  /** Past the floor: it passes every frame on until the connection takes its place. */
  #passing = false;

  constructor(session: SubscribingConnection, channel: string, maxBytes: number) {
    this.#session = session;
    this.#channel = channel;
    this.#maxBytes = maxBytes;
  }

  get standsFor(): Subscriber {
    return this.#session;
  }

  deliver(frame: string): boolean {
    if (this.#passing) return this.#session.deliver(frame);
    const floor = this.#floor;
    if (floor) return this.#pass(frame, floor);
    this.#bytes += frame.length;
    if (this.#bytes > this.#maxBytes) return false;
    this.#held.push(frame);
    return true;
  }

  dropAfterFailedDelivery(): void {
    this.#passing = false;
    this.#held.length = 0;
    this.#session.hub.history?.standDown(this.#channel, this.#session);
    this.#session.hub.remove(this.#channel, this);
    // Past what it may hold: a slow consumer (1013); else the connection's send failed.
    if (this.#bytes > this.#maxBytes) this.#session.cutOffSlow();
    else this.#session.dropAfterFailedDelivery();
  }

  /**
   * Sends what was held after `position` (the read covered the rest), and puts the
   * connection in this one's place: from now on it gets broadcasts itself. With a shared
   * store whose live copies have not reached `position` yet, it first drops those that
   * come at or below it.
   */
  handOver(position: StreamPosition | undefined, shared = false): void {
    const offset = position?.offset ?? -1;
    let last = -1;
    for (const frame of this.#held) {
      const at = offsetOf(frame);
      if (at !== undefined) last = Math.max(last, at);
      if (at === undefined || at > offset) this.#session.answer(frame);
    }
    this.#held.length = 0;
    const heard = Math.max(last, this.#session.hub.history?.heardOffset(this.#channel) ?? -1);
    if (shared && position && position.offset > 0 && heard < position.offset) {
      this.#floor = position;
      // The connection holds the channel now: leaving it removes this one.
      this.#session.hub.history?.standIn(this.#channel, this.#session, this);
      return;
    }
    this.#session.hub.index.swap(this.#channel, this, this.#session);
  }

  /**
   * A live copy after the hand-over: dropped at or below the floor; past it, the connection
   * takes over. Not at once: this runs inside the index's loop over the channel's
   * subscribers, which would reach the connection put in its place in the same loop.
   */
  #pass(frame: string, floor: StreamPosition): boolean {
    const at = offsetOf(frame);
    if (at === undefined) return this.#session.deliver(frame);
    const sameEpoch = frame.endsWith(`,"epoch":"${floor.epoch}"}`);
    if (sameEpoch && at < floor.offset) return true;
    this.#floor = undefined;
    this.#passing = true;
    queueMicrotask(() => {
      if (!this.#passing) return;
      this.#passing = false;
      this.#session.hub.history?.standDown(this.#channel, this.#session);
      this.#session.hub.index.swap(this.#channel, this, this.#session);
    });
    return sameEpoch && at === floor.offset ? true : this.#session.deliver(frame);
  }
}
