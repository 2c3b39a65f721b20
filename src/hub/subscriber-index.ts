import type { NativeDelivery, Subscriber } from "./subscriber.ts";

/**
 * Who is subscribed to what here (in this process, or this Durable Object), and delivery
 * of one serialized frame to every local subscriber of a concrete channel name. One
 * implementation for every runtime; a runtime with its own pub/sub lends it as a
 * {@link NativeDelivery}.
 */
export class SubscriberIndex {
  readonly #channels = new Map<string, Set<Subscriber>>();
  /** Per channel, the subscribers the native delivery does not reach, when there is one. */
  readonly #looped = new Map<string, Set<Subscriber>>();
  #native: NativeDelivery | undefined;

  /**
   * Delivers through the runtime's pub/sub from now on (adapters set it when they start
   * serving). Subscribers added before keep being sent to in a loop.
   */
  useNativeDelivery(native: NativeDelivery): void {
    if (this.#native === native) return;
    if (this.#native) throw new Error("This app already delivers through a runtime's pub/sub.");
    this.#native = native;
    for (const [channel, subscribers] of this.#channels) {
      this.#looped.set(channel, new Set(subscribers));
    }
  }

  /** Adds `subscriber` to `channel`; `true` when the channel had no subscriber here before. */
  add(channel: string, subscriber: Subscriber): boolean {
    let subscribers = this.#channels.get(channel);
    const first = !subscribers;
    if (!subscribers) {
      subscribers = new Set();
      this.#channels.set(channel, subscribers);
    }
    if (subscribers.has(subscriber)) return false;
    subscribers.add(subscriber);
    if (this.#native && !this.#native.join(channel, subscriber)) {
      let looped = this.#looped.get(channel);
      if (!looped) {
        looped = new Set();
        this.#looped.set(channel, looped);
      }
      looped.add(subscriber);
    }
    return first;
  }

  /** Removes `subscriber` from `channel`; `true` when it was the channel's last one here. */
  remove(channel: string, subscriber: Subscriber): boolean {
    const subscribers = this.#channels.get(channel);
    if (!subscribers?.delete(subscriber)) return false;
    const looped = this.#looped.get(channel);
    if (looped?.delete(subscriber)) {
      if (looped.size === 0) this.#looped.delete(channel);
    } else this.#native?.leave(channel, subscriber);
    if (subscribers.size > 0) return false;
    this.#channels.delete(channel);
    return true;
  }

  /** Sends `frame` once to every local subscriber of `channel`; returns how many it reached. */
  deliver(channel: string, frame: string): number {
    const subscribers = this.#channels.get(channel);
    if (!subscribers) return 0;
    if (!this.#native) return sendEach(subscribers, frame);
    const looped = this.#looped.get(channel);
    const native = looped?.size === subscribers.size ? 0 : this.#native.publish(channel, frame);
    return native + (looped ? sendEach(looped, frame) : 0);
  }

  /** How many subscribers `channel` has here, or how many channels have any without an argument. */
  size(channel?: string): number {
    if (channel === undefined) return this.#channels.size;
    return this.#channels.get(channel)?.size ?? 0;
  }

  /** Whether `channel` has a subscriber here. */
  has(channel: string): boolean {
    return this.#channels.has(channel);
  }
}

/** Sends to each subscriber; those whose send fails are dropped after the loop. */
function sendEach(subscribers: Iterable<Subscriber>, frame: string): number {
  let delivered = 0;
  let failed: Subscriber[] | undefined;
  for (const subscriber of subscribers) {
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
