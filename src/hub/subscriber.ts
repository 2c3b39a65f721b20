/** One receiver of broadcasts: a connection, as the hub sees it. */
import type { Connection } from "../context.ts";

export interface Subscriber {
  /**
   * Sends an already serialized frame. Returns `false` when the socket is gone or the send
   * failed; the index then drops the subscriber from every channel.
   */
  deliver(frame: string): boolean;
  /** Called after a failed delivery: forget every subscription, close if open. */
  dropAfterFailedDelivery(): void;
  /**
   * The connection this one stands in for (while a subscribe with history reads the
   * stream): a broadcast for everyone but that connection skips it too.
   */
  readonly standsFor?: Subscriber | undefined;
}

/**
 * A runtime's own pub/sub (Bun's topics), which an index may deliver through: one call per
 * broadcast, fanned out in native code, instead of a loop of sends.
 */
export interface NativeDelivery {
  /**
   * Puts `subscriber` on the runtime's topic for `channel`. `false` when the subscriber is
   * not one of the runtime's sockets (an in-memory test client): the index then sends to
   * it itself.
   */
  join(channel: string, subscriber: Subscriber): boolean;
  /** Takes `subscriber` off the topic. */
  leave(channel: string, subscriber: Subscriber): void;
  /** Sends `frame` to everyone on the topic; returns how many it reached. */
  publish(channel: string, frame: string): number;
  /** Sends `frame` to everyone on the topic but `excluded`; returns how many it reached. */
  publishExcept(channel: string, frame: string, excluded: Subscriber): number;
}

/**
 * A connection as the hub keeps it: a subscriber that can say whether it holds a channel
 * (without building the set `subscriptions` returns).
 */
export interface HubConnection extends Connection<object>, Subscriber {
  holds(channel: string): boolean;
}
