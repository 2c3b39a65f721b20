import { offsetOf } from "../history/stamp.ts";
import type { Subscriber } from "../hub/subscriber.ts";
import type { Session } from "./session.ts";

/**
 * Stands in for a connection on a channel with history while its subscribe reads the
 * stream: it holds what is broadcast meanwhile, then sends what the read did not cover and
 * puts the connection in its place. So a broadcast made during the read is neither lost
 * nor sent twice. It holds at most `maxBytes` (the connection's send-buffer limit): a
 * client that cannot take more is dropped, as a slow one would be.
 */
export class RecoveringSubscriber implements Subscriber {
  readonly #session: Session<object>;
  readonly #channel: string;
  readonly #maxBytes: number;
  readonly #held: string[] = [];
  #bytes = 0;

  constructor(session: Session<object>, channel: string, maxBytes: number) {
    this.#session = session;
    this.#channel = channel;
    this.#maxBytes = maxBytes;
  }

  deliver(frame: string): boolean {
    this.#bytes += frame.length;
    if (this.#bytes > this.#maxBytes) return false;
    this.#held.push(frame);
    return true;
  }

  dropAfterFailedDelivery(): void {
    this.#session.hub.remove(this.#channel, this);
    this.#session.dropAfterFailedDelivery();
  }

  /**
   * Sends what was held with an offset after `offset` (the read covered the rest), and
   * puts the connection in this one's place: from now on it gets broadcasts itself.
   */
  handOver(offset: number): void {
    for (const frame of this.#held) {
      const at = offsetOf(frame);
      if (at === undefined || at > offset) this.#session.answer(frame);
    }
    this.#held.length = 0;
    this.#session.hub.index.swap(this.#channel, this, this.#session);
  }
}
