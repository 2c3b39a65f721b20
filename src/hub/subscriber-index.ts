import type { NativeDelivery, Subscriber } from "./subscriber.ts";

/**
 * Who is subscribed to what here (in this process, or this Durable Object), and delivery
 * of one serialized frame to every local subscriber of a concrete channel name. One
 * implementation for every runtime; a runtime with its own pub/sub lends it as a
 * {@link NativeDelivery}.
 */
export class SubscriberIndex {
  /**
   * Per channel, the subscribers this index sends to itself, and how many more the native
   * delivery reaches: those are not kept here (the runtime keeps them on its topic, and
   * each connection its own subscriptions), so a subscription costs no entry twice.
   */
  readonly #channels = new Map<string, ChannelSubscribers>();
  #native: NativeDelivery | undefined;

  /**
   * Delivers through the runtime's pub/sub from now on (adapters set it when they start
   * serving). Subscribers added before keep being sent to in a loop.
   */
  useNativeDelivery(native: NativeDelivery): void {
    if (this.#native === native) return;
    if (this.#native) throw new Error("This app already delivers through a runtime's pub/sub.");
    this.#native = native;
  }

  /**
   * Adds `subscriber` to `channel`, which it must not be subscribed to (a connection keeps
   * its own subscriptions); `true` when the channel had no subscriber here before.
   */
  add(channel: string, subscriber: Subscriber): boolean {
    let entry = this.#channels.get(channel);
    const first = !entry;
    if (!entry) {
      entry = { looped: undefined, native: 0 };
      this.#channels.set(channel, entry);
    }
    if (this.#native?.join(channel, subscriber)) entry.native++;
    else {
      entry.looped ??= new Set();
      entry.looped.add(subscriber);
    }
    return first;
  }

  /**
   * Removes `subscriber` from `channel`, which it must be subscribed to; `true` when it was
   * the channel's last one here.
   */
  remove(channel: string, subscriber: Subscriber): boolean {
    const entry = this.#channels.get(channel);
    if (!entry) return false;
    if (!entry.looped?.delete(subscriber)) {
      if (!this.#native || entry.native === 0) return false;
      this.#native.leave(channel, subscriber);
      entry.native--;
    }
    if (entry.native > 0 || (entry.looped?.size ?? 0) > 0) return false;
    this.#channels.delete(channel);
    return true;
  }

  /**
   * Puts `to` in the place of `from` on `channel`, without the channel ever having no
   * subscriber (the relay stays joined): how a subscriber that buffered during a recovery
   * hands over to the connection.
   */
  swap(channel: string, from: Subscriber, to: Subscriber): void {
    const entry = this.#channels.get(channel);
    if (!entry?.looped?.delete(from)) return;
    if (this.#native?.join(channel, to)) entry.native++;
    else entry.looped.add(to);
  }

  /** Sends `frame` once to every local subscriber of `channel`; returns how many it reached. */
  deliver(channel: string, frame: string): number {
    const entry = this.#channels.get(channel);
    if (!entry) return 0;
    const native = entry.native > 0 ? (this.#native as NativeDelivery).publish(channel, frame) : 0;
    return native + (entry.looped ? sendEach(entry.looped, frame) : 0);
  }

  /** Sends `frame` once to every local subscriber of `channel` but `excluded`. */
  deliverExcept(channel: string, frame: string, excluded: Subscriber): number {
    const entry = this.#channels.get(channel);
    if (!entry) return 0;
    const native =
      entry.native > 0
        ? (this.#native as NativeDelivery).publishExcept(channel, frame, excluded)
        : 0;
    return native + (entry.looped ? sendEach(entry.looped, frame, excluded) : 0);
  }

  /** How many subscribers `channel` has here, or how many channels have any without an argument. */
  size(channel?: string): number {
    if (channel === undefined) return this.#channels.size;
    const entry = this.#channels.get(channel);
    return entry ? entry.native + (entry.looped?.size ?? 0) : 0;
  }

  /** Each channel with subscribers here, and how many it has (for the dashboard). */
  *sizes(): IterableIterator<[channel: string, subscribers: number]> {
    for (const [channel, entry] of this.#channels) {
      yield [channel, entry.native + (entry.looped?.size ?? 0)];
    }
  }

  /** Whether `channel` has a subscriber here. */
  has(channel: string): boolean {
    return this.#channels.has(channel);
  }
}

/** A channel's local subscribers. */
interface ChannelSubscribers {
  /** Those the index sends to itself: all of them without a native delivery. */
  looped: Set<Subscriber> | undefined;
  /** How many the native delivery reaches. */
  native: number;
}

/** Sends to each subscriber but `skipped`; those whose send fails are dropped after the loop. */
function sendEach(subscribers: Iterable<Subscriber>, frame: string, skipped?: Subscriber): number {
  let delivered = 0;
  let failed: Subscriber[] | undefined;
  for (const subscriber of subscribers) {
    if (skipped !== undefined && (subscriber === skipped || subscriber.standsFor === skipped)) {
      continue;
    }
    if (subscriber.deliver(frame)) delivered++;
    else {
      failed ??= [];
      failed.push(subscriber);
    }
  }
  // Dropped after the loop: the others have all been served first.
  if (failed) for (const subscriber of failed) subscriber.dropAfterFailedDelivery();
  return delivered;
}
