import {
  DEFAULT_PRESENCE_LEAVE_DELAY_MS,
  joinFrame,
  leaveFrame,
  MAX_LISTED_BYTES,
  MAX_LISTED_MEMBERS,
  type PresenceCount,
  PresenceRegistry,
  type SharedPresenceStore,
} from "../presence/presence-registry.ts";
import { isThenable } from "../thenable.ts";
import type { PlaceLink } from "./place-link.ts";
import type { NativeDelivery, Subscriber } from "./subscriber.ts";
import { SubscriberIndex } from "./subscriber-index.ts";

/**
 * The presence of one place's channels: who is here on each (the {@link PresenceRegistry}),
 * who listens to their joins and leaves, the leave delay of members whose last connection
 * left, and the listings subscribes are given. With a relay that shares presence (Redis),
 * the counts and listings are the cluster's, and joins and leaves go through it.
 *
 * A hub makes it when a connection first enters a channel's presence, or the app asks.
 */
export class PresencePlace {
  /** Who is here on each channel with presence. */
  readonly registry: PresenceRegistry = new PresenceRegistry();
  /** The subscribers that asked to hear joins and leaves, per channel. */
  readonly listeners: SubscriberIndex = new SubscriberIndex();
  /** How long a member whose last connection left stays before its leave (ms; 0: none). */
  leaveDelay = DEFAULT_PRESENCE_LEAVE_DELAY_MS;
  readonly #link: PlaceLink;
  /** Members whose last connection left, until their leave delay is over. */
  readonly #leaving = new Map<string, ReturnType<typeof setTimeout>>();
  /** The members listings subscribes were given lately, per channel (the oldest first). */
  readonly #listings = new Map<string, { json: string; count: number; at: number }>();

  constructor(link: PlaceLink) {
    this.#link = link;
  }

  /** Presence every instance shares, when the relay offers it (Redis). */
  get #shared(): SharedPresenceStore | undefined {
    return this.#link.relay?.presence;
  }

  /**
   * A connection of `member` entered the presence of `channel`: when it is the member's
   * first (here, or in the cluster with a shared store), the others listening hear `join`.
   * A member whose last connection left less than the leave delay ago is back: nobody
   * hears anything (neither the leave nor a join).
   */
  join(
    channel: string,
    member: string,
    info: string,
    connection: Subscriber & { readonly id: string },
  ): void | Promise<void> {
    this.#listings.delete(channel);
    const key = leavingKey(channel, member);
    const leaving = this.#leaving.get(key);
    if (leaving !== undefined) {
      clearTimeout(leaving);
      this.#leaving.delete(key);
      this.registry.join(channel, member, info);
      return;
    }
    const frame = joinFrame(channel, member, info);
    // This instance's own share is counted with or without a shared store: a store that
    // records each instance's share (Workers) is told it, and it survives a wake.
    const first = this.registry.join(channel, member, info);
    const shared = this.#shared;
    if (shared) {
      const here = this.registry.connectionsOf(channel, member);
      return this.#link
        .start()
        .then(() => shared.join(channel, member, info, frame, connection.id, here))
        .catch((error: unknown) => this.#link.report(error, { channel, phase: "relay" }));
    }
    if (first) this.#link.delivered(this.listeners.deliverExcept(channel, frame, connection));
  }

  /**
   * A connection of `member` left: when it was the member's last, the listeners hear
   * `leave`, after the leave delay (unless it comes back meanwhile): a member that toggles
   * its presence makes at most a join and a leave per delay, whatever it sends.
   */
  leave(channel: string, member: string): void {
    this.#listings.delete(channel);
    const delay = this.leaveDelay;
    if (delay > 0 && this.registry.leave(channel, member, true)) {
      const key = leavingKey(channel, member);
      const timer = setTimeout(() => this.#leftFor(key, channel, member), delay);
      (timer as { unref?: () => void }).unref?.();
      this.#leaving.set(key, timer);
      return;
    }
    if (delay > 0) {
      // Not its last connection here: a shared store counts it out now.
      this.#leftShared(channel, member);
      return;
    }
    const last = this.registry.leave(channel, member);
    if (this.#shared) this.#leftShared(channel, member);
    else if (last) this.#announceLeave(channel, member);
  }

  /** The leave delay of a member's last connection is over: it leaves, if it is still leaving. */
  #leftFor(key: string, channel: string, member: string): void {
    this.#leaving.delete(key);
    if (!this.registry.expire(channel, member)) return;
    this.#listings.delete(channel);
    if (this.#shared) this.#leftShared(channel, member);
    else this.#announceLeave(channel, member);
  }

  /** Tells a shared store this instance's share of `member` after one of its connections left. */
  #leftShared(channel: string, member: string): void {
    const shared = this.#shared;
    if (!shared) return;
    const here = this.registry.connectionsOf(channel, member);
    shared
      .leave(channel, member, leaveFrame(channel, member), here)
      .catch((error: unknown) => this.#link.report(error, { channel, phase: "relay" }));
  }

  #announceLeave(channel: string, member: string): void {
    this.#link.delivered(this.listeners.deliver(channel, leaveFrame(channel, member)));
  }

  /**
   * A join or leave another instance made, from a shared presence store: for the
   * listeners here (but `excluded`, the connection it came from), not the subscribers.
   */
  receive(channel: string, event: string, excluded: Subscriber | undefined): number {
    this.#listings.delete(channel);
    return excluded
      ? this.listeners.deliverExcept(channel, event, excluded)
      : this.listeners.deliver(channel, event);
  }

  /** How many members `channel` has, and how many connections they subscribed. */
  count(channel: string): PresenceCount | Promise<PresenceCount> {
    const shared = this.#shared;
    if (shared) return this.#link.start().then(() => shared.count(channel));
    return {
      members: this.registry.count(channel),
      connections: this.registry.connections(channel),
    };
  }

  /**
   * The first members of `channel` as a JSON array (at most `limit` of them, at most
   * `maxBytes` of JSON), and how many there are.
   */
  members(
    channel: string,
    limit: number,
    maxBytes = Number.POSITIVE_INFINITY,
  ): { json: string; count: number } | Promise<{ json: string; count: number }> {
    const here = () => ({
      json: this.registry.membersJson(channel, limit, maxBytes),
      count: this.registry.count(channel),
    });
    const shared = this.#shared;
    if (!shared) return here();
    // The broker cannot answer: this instance's own members, rather than none.
    return this.#link
      .start()
      .then(() => shared.members(channel, limit, maxBytes))
      .catch((error: unknown) => {
        this.#link.report(error, { channel, phase: "relay" });
        return here();
      });
  }

  /**
   * The listing a `subscribed` frame carries ({@link members} within its bounds), written
   * once for the subscribes that ask for it until a join or leave changes it, and at
   * most a second old (a shared store's changes may come by another way).
   */
  listing(
    channel: string,
  ): { json: string; count: number } | Promise<{ json: string; count: number }> {
    const cached = this.#listings.get(channel);
    const now = Date.now();
    if (cached && now - cached.at < LISTING_MS) return cached;
    const made = this.members(channel, MAX_LISTED_MEMBERS, MAX_LISTED_BYTES);
    const keep = (listing: { json: string; count: number }) => {
      this.#listings.delete(channel);
      for (const oldest of this.#listings.keys()) {
        if (this.#listings.size < MAX_LISTINGS) break;
        this.#listings.delete(oldest);
      }
      this.#listings.set(channel, { ...listing, at: now });
      return listing;
    };
    return isThenable(made) ? Promise.resolve(made).then(keep) : keep(made);
  }

  /**
   * Delivers joins and leaves through the runtime's pub/sub (Bun's topics), on topics of
   * their own: `//presence/` and the channel (no concrete name of a declared channel starts
   * with an empty segment).
   */
  useNativeDelivery(native: NativeDelivery): void {
    this.listeners.useNativeDelivery({
      join: (channel, subscriber) => native.join(PRESENCE_TOPIC + channel, subscriber),
      leave: (channel, subscriber) => native.leave(PRESENCE_TOPIC + channel, subscriber),
      publish: (channel, frame) => native.publish(PRESENCE_TOPIC + channel, frame),
      publishExcept: (channel, frame, excluded) =>
        native.publishExcept(PRESENCE_TOPIC + channel, frame, excluded),
    });
  }

  /** Members leaving leave now: the other instances need not wait for their heartbeat. */
  close(): void {
    for (const [key, timer] of [...this.#leaving]) {
      clearTimeout(timer);
      const [channel, member] = splitLeavingKey(key);
      this.#leftFor(key, channel, member);
    }
  }
}

/** How long a members listing given to a subscribe is given again, at most. */
const LISTING_MS = 1000;

/** How many channels' listings are kept at once. */
const MAX_LISTINGS = 64;

/** A member of a channel as one key: the channel's length, `:`, the channel, the member. */
function leavingKey(channel: string, member: string): string {
  return `${channel.length}:${channel}${member}`;
}

function splitLeavingKey(key: string): [channel: string, member: string] {
  const colon = key.indexOf(":");
  const length = Number(key.slice(0, colon));
  return [key.slice(colon + 1, colon + 1 + length), key.slice(colon + 1 + length)];
}

/** Where the joins and leaves of a channel's presence go on a runtime's own pub/sub. */
const PRESENCE_TOPIC = "//presence/";
