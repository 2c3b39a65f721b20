import type { Subscriber } from "../hub/subscriber.ts";
import type { SubscribingConnection } from "./served-connection.ts";

/**
 * Stands in for a connection on a channel without history while its subscribe waits (for
 * the relay to join the channel, for presence): it holds what is broadcast meanwhile, so
 * that the client gets `subscribed` (and the initial data) first, then those broadcasts,
 * then the connection takes its place. It holds at most `maxBytes` (the connection's
 * send-buffer limit): a client that cannot take more is dropped, as a slow one would be.
 *
 * @example
 * const joining = new JoiningSubscriber(session, "chat", session.limits.maxBufferedBytes);
 * await session.hub.add("chat", joining);
 * session.answer(subscribed);
 * joining.handOver();
 */
export class JoiningSubscriber implements Subscriber {
  readonly #session: SubscribingConnection;
  readonly #channel: string;
  readonly #maxBytes: number;
  readonly #held: string[] = [];
  #bytes = 0;

  constructor(session: SubscribingConnection, channel: string, maxBytes: number) {
    this.#session = session;
    this.#channel = channel;
    this.#maxBytes = maxBytes;
  }

  get standsFor(): Subscriber {
    return this.#session;
  }

  deliver(frame: string): boolean {
    this.#bytes += frame.length;
    // Past the limit: dropped by the index after its loop, then cut off below.
    if (this.#bytes > this.#maxBytes) return false;
    this.#held.push(frame);
    return true;
  }

  dropAfterFailedDelivery(): void {
    this.#held.length = 0;
    this.#session.hub.remove(this.#channel, this);
    if (this.#bytes > this.#maxBytes) this.#session.cutOffSlow();
    else this.#session.dropAfterFailedDelivery();
  }

  /**
   * Once the subscribe is answered (or given up): hands over if the connection still holds
   * the channel, else (it left or closed meanwhile, which could not remove this one) leaves.
   */
  settle(): void {
    if (this.#session.closed || !this.#session.holds(this.#channel)) {
      this.#session.hub.remove(this.#channel, this);
      return;
    }
    this.handOver();
  }

  /** Sends what was held, and puts the connection in this one's place. */
  handOver(): void {
    for (const frame of this.#held) this.#session.answer(frame);
    this.#held.length = 0;
    this.#session.hub.index.swap(this.#channel, this, this.#session);
  }
}
