/** One receiver of broadcasts: a connection, as the hub sees it. */
export interface Subscriber {
  /**
   * Sends an already serialized frame. Returns `false` when the socket is gone or the send
   * failed; the hub then drops the subscriber from every channel.
   */
  deliver(frame: string): boolean;
  /** Called by the hub after a failed delivery: forget every subscription, close if open. */
  dropAfterFailedDelivery(): void;
}

/**
 * Who is subscribed to what, and delivery of one serialized frame to every subscriber of a
 * concrete channel name. It is the seam for scale: in memory by default; an adapter may
 * put the runtime's own pub/sub behind it (Bun's topics, a Durable Object's sockets).
 */
export interface Hub {
  /**
   * Adds `subscriber` to `channel`; adding twice changes nothing. `params` are the
   * subscribe-time parameters the client sent, for hubs that persist subscriptions. A hub
   * may refuse by throwing a `SocketAPIError`, and may return a promise: the client is
   * told `subscribed` only once it settles.
   */
  add(
    channel: string,
    subscriber: Subscriber,
    params?: Record<string, unknown>,
  ): void | Promise<void>;
  /** Removes `subscriber` from `channel`; removing a stranger changes nothing. */
  remove(channel: string, subscriber: Subscriber): void;
  /**
   * Sends `frame` once to every subscriber of `channel`; returns how many it reached.
   * `origin` is the connection whose handler broadcast, when there is one: a hub spread
   * over several places can serve that connection's place directly.
   */
  publish(channel: string, frame: string, origin?: Subscriber): number | Promise<number>;
  /** How many subscribers `channel` has, or how many channels have any without an argument. */
  size(channel?: string): number;
}

/** The default hub: an index in this process's memory. */
export class MemoryHub implements Hub {
  readonly #channels = new Map<string, Set<Subscriber>>();

  add(channel: string, subscriber: Subscriber): void {
    let subscribers = this.#channels.get(channel);
    if (!subscribers) {
      subscribers = new Set();
      this.#channels.set(channel, subscribers);
    }
    subscribers.add(subscriber);
  }

  remove(channel: string, subscriber: Subscriber): void {
    const subscribers = this.#channels.get(channel);
    if (!subscribers?.delete(subscriber)) return;
    if (subscribers.size === 0) this.#channels.delete(channel);
  }

  publish(channel: string, frame: string): number {
    const subscribers = this.#channels.get(channel);
    if (!subscribers) return 0;
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

  size(channel?: string): number {
    if (channel === undefined) return this.#channels.size;
    return this.#channels.get(channel)?.size ?? 0;
  }
}
