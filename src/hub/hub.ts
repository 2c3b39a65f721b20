import type { AppView, Connection, ErrorInfo } from "../context.ts";
import { isThenable } from "../thenable.ts";
import type { Relay } from "./relay.ts";
import type { Subscriber } from "./subscriber.ts";
import { SubscriberIndex } from "./subscriber-index.ts";

/**
 * Subscriptions and broadcasts for one place that holds connections (a process, a Durable
 * Object): its connections, the local {@link SubscriberIndex}, and an optional
 * {@link Relay} to the other places. Handlers see it as `ctx.app`. A broadcast reaches the local subscribers first, synchronously, then goes to
 * the relay; the relay is joined to a channel while the place has subscribers of it.
 *
 * A relay's failures never fail a local broadcast or a subscribe: they go to the app's
 * error hook, and local delivery goes on.
 */
export class Hub implements AppView<object> {
  /** Who is subscribed here. */
  readonly index: SubscriberIndex = new SubscriberIndex();
  /** The connections this place holds. */
  readonly connections: Set<Connection<object>> = new Set();
  #relay: Relay | undefined;
  #opened: Promise<void> | undefined;
  /** Whether the relay's failure to open was told to the app (once, not per broadcast). */
  #openFailureReported = false;
  readonly #report: (error: unknown, info: ErrorInfo) => void;

  constructor(report: (error: unknown, info: ErrorInfo) => void, relay?: Relay) {
    this.#report = report;
    this.#relay = relay;
  }

  /** The relay to other places, if any. */
  get relay(): Relay | undefined {
    return this.#relay;
  }

  /**
   * Gives this hub its relay, when the app's options did not: adapters whose platform
   * carries broadcasts between places (Workers' shard directory) set theirs. A relay
   * already given is never replaced: that is an error.
   */
  useRelay(relay: Relay): void {
    if (this.#relay === relay) return;
    if (this.#relay) {
      throw new Error(
        "This app already has a relay: the runtime carries broadcasts between its places itself.",
      );
    }
    this.#relay = relay;
  }

  /**
   * Opens the relay (once); resolves when it is ready. Adapters that start a server await
   * it, so that a relay that cannot connect fails the start, not the first subscribe.
   */
  start(): Promise<void> {
    const relay = this.#relay;
    if (!relay) return Promise.resolve();
    this.#opened ??= Promise.resolve().then(() =>
      relay.open(
        (channel, frame) => {
          this.index.deliver(channel, frame);
        },
        (error) => this.#report(error, { phase: "relay" }),
      ),
    );
    return this.#opened;
  }

  /**
   * Adds `subscriber` to `channel`. The first local subscriber of a channel joins it on the
   * relay; the returned promise settles once joined (never rejects: a relay that cannot
   * join is reported, and local broadcasts still reach the subscriber).
   */
  add(channel: string, subscriber: Subscriber): void | Promise<void> {
    if (!this.index.add(channel, subscriber) || !this.#relay) return;
    const relay = this.#relay;
    return this.start().then(
      () =>
        Promise.resolve()
          .then(() => relay.join(channel))
          .catch((error: unknown) => this.#report(error, { channel, phase: "relay" })),
      (error: unknown) => this.#openFailed(error),
    );
  }

  /** The relay could not open: told once; local delivery goes on without it. */
  #openFailed(error: unknown): void {
    if (this.#openFailureReported) return;
    this.#openFailureReported = true;
    this.#report(error, { phase: "relay" });
  }

  /** Removes `subscriber` from `channel`; the last local subscriber leaves it on the relay. */
  remove(channel: string, subscriber: Subscriber): void {
    if (!this.index.remove(channel, subscriber) || !this.#relay) return;
    const relay = this.#relay;
    try {
      const left = relay.leave(channel);
      if (isThenable(left)) {
        Promise.resolve(left).catch((error: unknown) =>
          this.#report(error, { channel, phase: "relay" }),
        );
      }
    } catch (error) {
      this.#report(error, { channel, phase: "relay" });
    }
  }

  /**
   * Sends a serialized frame to every subscriber of `channel`: here at once, elsewhere
   * through the relay. Resolves with how many it reached (elsewhere, as far as the relay
   * can tell). Never rejects.
   */
  publish(channel: string, frame: string): number | Promise<number> {
    const local = this.index.deliver(channel, frame);
    const relay = this.#relay;
    if (!relay) return local;
    const fail = (error: unknown): number => {
      this.#report(error, { channel, phase: "relay" });
      return local;
    };
    const remote = (): number | Promise<number> => {
      try {
        const sent = relay.publish(channel, frame);
        if (!isThenable(sent)) return local + (typeof sent === "number" ? sent : 0);
        return Promise.resolve(sent).then(
          (count) => local + (typeof count === "number" ? count : 0),
          fail,
        );
      } catch (error) {
        return fail(error);
      }
    };
    const unopened = (error: unknown): number => {
      this.#openFailed(error);
      return local;
    };
    return (this.#opened ?? this.start()).then(remote, unopened);
  }

  /** How many subscribers `channel` has here, or how many channels have any without an argument. */
  size(channel?: string): number {
    return this.index.size(channel);
  }

  /** How many connections here are subscribed to a concrete channel name. */
  subscriberCount(channel: string): number {
    return this.index.size(channel);
  }

  /** Closes the relay. */
  async close(): Promise<void> {
    if (this.#opened) await this.#opened.catch(() => {});
    await this.#relay?.close();
  }
}
