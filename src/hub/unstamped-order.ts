/**
 * The order, per channel, in which the subscribers here get the broadcasts of a shared
 * history store that the broker did not take. A broadcast the broker failed is given to
 * them without an offset, but only after every broadcast sent before it on that channel
 * is settled: one that fails at once (past `maxPendingBytes`, say) waits for earlier ones
 * whose command is late, so that they arrive in the order they were broadcast. What waits
 * so is bounded: past {@link MAX_WAITING_BYTES} in all, a failed broadcast is given to them
 * at once, out of order, rather than held; and a channel keeps at most
 * {@link MAX_PLACES} places, past which its oldest unsettled broadcast is waited for no
 * more (a broker that never answers nor closes, without a heartbeat). Each place lives
 * from its broadcast to its settling. A failed broadcast held so reaches whoever is
 * subscribed once it is delivered, as a late one does when the broker fails it.
 *
 * @example
 * const order = new UnstampedOrder();
 * const place = order.enter("feed");
 * // … the broker failed it:
 * order.settle("feed", place, { deliver: () => deliverHere(), bytes: frame.length });
 */
export class UnstampedOrder {
  readonly #queues = new Map<string, Place[]>();
  /** The bytes of the failed broadcasts waiting for earlier ones. */
  #waitingBytes = 0;

  /** A place, in order, for a broadcast on `channel` about to be sent. */
  enter(channel: string): Place {
    const place: Place = { settled: false, failed: undefined };
    const queue = this.#queues.get(channel);
    if (!queue) {
      this.#queues.set(channel, [place]);
      return place;
    }
    queue.push(place);
    // The oldest has waited for MAX_PLACES broadcasts: its fate is not waited for here.
    if (queue.length > MAX_PLACES) this.#flush(channel, queue);
    return place;
  }

  /**
   * The broadcast at `place` is settled: taken by the broker (no `failed`), or failed
   * (`failed.deliver` gives it to the subscribers here). It answers what `deliver`
   * answered when it ran now, or 0 when it waits for earlier broadcasts.
   */
  settle(channel: string, place: Place, failed?: Failed): number {
    if (place.settled) return 0;
    place.settled = true;
    const queue = this.#queues.get(channel) as Place[];
    if (queue[0] === place) {
      const count = failed?.deliver() ?? 0;
      this.#flush(channel, queue);
      return count;
    }
    if (!failed) return 0;
    if (this.#waitingBytes + failed.bytes > MAX_WAITING_BYTES) {
      // Too much waits already: out of order rather than held.
      queue.splice(queue.indexOf(place), 1);
      return failed.deliver();
    }
    place.failed = failed;
    this.#waitingBytes += failed.bytes;
    return 0;
  }

  /** Takes the head of `queue` off, then the settled places after it, delivering the failed ones in order. */
  #flush(channel: string, queue: Place[]): void {
    const head = queue.shift() as Place;
    head.settled = true;
    while (queue[0]?.settled) {
      const { failed } = queue.shift() as Place;
      if (!failed) continue;
      this.#waitingBytes -= failed.bytes;
      failed.deliver();
    }
    if (queue.length === 0) this.#queues.delete(channel);
  }
}

/** At most this many bytes of failed broadcasts wait for earlier ones, on all channels. */
export const MAX_WAITING_BYTES = 1024 * 1024;
/** At most this many broadcasts of a channel are kept in order. */
export const MAX_PLACES = 10_000;

/** A broadcast's place in its channel's order. */
export interface Place {
  settled: boolean;
  failed: Failed | undefined;
}

/** A broadcast the broker failed: how to give it to the subscribers here, and its size. */
export interface Failed {
  deliver(): number;
  readonly bytes: number;
}
