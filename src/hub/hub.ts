import type { AppView, Connection, ErrorInfo } from "../context.ts";
import type { HistoryOptions, HistoryStore } from "../history/history.ts";
import { isThenable } from "../thenable.ts";
import { appViewOf } from "./app-view.ts";
import { type DisconnectTarget, disconnectHere } from "./disconnect.ts";
import { HistoryPlace, type LingerLimits } from "./history-place.ts";
import type { PlaceLink } from "./place-link.ts";
import { PresencePlace } from "./presence-place.ts";
import type { Relay } from "./relay.ts";
import { wasReported } from "./reported.ts";
import type { HubConnection, NativeDelivery, Subscriber } from "./subscriber.ts";
import { SubscriberIndex } from "./subscriber-index.ts";
import { splitTargeted, type Target, targetedFrame } from "./target.ts";

/**
 * Subscriptions and broadcasts for one place that holds connections (a process, a Durable
 * Object): its connections, the local {@link SubscriberIndex}, and an optional
 * {@link Relay} to the other places. Handlers see it as `ctx.app`. A broadcast reaches the
 * local subscribers first, synchronously, then goes to the relay; the relay is joined to a
 * channel while the place has subscribers of it. Presence ({@link PresencePlace}) and
 * history ({@link HistoryPlace}) are parts of their own, made only for an app that
 * declares them: a channel without them runs none of their code.
 *
 * A relay's failures never fail a local broadcast or a subscribe: they go to the app's
 * error hook, and local delivery goes on.
 */
export class Hub {
  /** Who is subscribed here. */
  readonly index: SubscriberIndex = new SubscriberIndex();
  /** The connections this place holds. */
  readonly connections: Set<HubConnection> = new Set();
  /** The user a connection belongs to (the app's `userId`), for `toUser`. */
  userOf: ((connection: Connection<object>) => string | undefined) | undefined;
  /** Told how many subscribers each delivery reached here, for the app's metrics. */
  telemetry: { delivered(count: number): void } | undefined;
  /** The connections whose id was read or given, by id: what `to(id)` looks up. */
  readonly #byId = new Map<string, HubConnection>();
  /** The runtime's pub/sub, once an adapter lent it. */
  #native: NativeDelivery | undefined;
  #relay: Relay | undefined;
  /** The topics of this instance's own that it hears, and who hears each. */
  #direct: Map<string, (message: string) => void> | undefined;
  #opened: Promise<void> | undefined;
  /** Whether the relay's failure to open was told to the app (once, not per broadcast). */
  #openFailureReported = false;
  readonly #report: (error: unknown, info: ErrorInfo) => void;
  /** What the presence and history parts use of this hub. */
  readonly #link: PlaceLink;
  #presence: PresencePlace | undefined;
  #presenceLeaveDelay: number | undefined;
  #history: HistoryPlace | undefined;

  constructor(report: (error: unknown, info: ErrorInfo) => void, relay?: Relay) {
    // What a relay told the app already (an outage, once) is not told again per broadcast.
    this.#report = (error, info) => {
      if (!wasReported(error)) report(error, info);
    };
    this.#relay = relay;
    const hub = this;
    this.#link = {
      index: this.index,
      get relay() {
        return hub.#relay;
      },
      start: () => this.start(),
      openFailed: (error) => this.#openFailed(error),
      report: this.#report,
      deliverExcept: (channel, frame, except) => this.#deliverExcept(channel, frame, except),
      leaveRelay: (channel) => this.#leave(channel),
      delivered: (count) => this.telemetry?.delivered(count),
    };
  }

  /** The app as this place's handlers see it (`ctx.app`). */
  get view(): AppView<object> {
    return appViewOf(this);
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

  /** The presence of this place's channels if it was made, without making it. */
  get presenceIfMade(): PresencePlace | undefined {
    return this.#presence;
  }

  /**
   * The presence of this place's channels, made when first asked for (a connection
   * entering a channel's presence, the app counting or listing members).
   */
  get presence(): PresencePlace {
    if (!this.#presence) {
      const presence = new PresencePlace(this.#link);
      if (this.#presenceLeaveDelay !== undefined) presence.leaveDelay = this.#presenceLeaveDelay;
      if (this.#native) presence.useNativeDelivery(this.#native);
      this.#presence = presence;
    }
    return this.#presence;
  }

  /** How long a member whose last connection left stays before its leave (ms; 0: none). */
  set presenceLeaveDelay(delay: number) {
    this.#presenceLeaveDelay = delay;
    if (this.#presence) this.#presence.leaveDelay = delay;
  }

  /** The history of this place's channels, once {@link keepHistory} was called. */
  get history(): HistoryPlace | undefined {
    return this.#history;
  }

  /**
   * Keeps history for the channels `optionsOf` gives options for, in `store`. Apps call it
   * when they get a channel with history; adapters whose places keep it elsewhere (a
   * Durable Object's storage) or nowhere (a Worker without sockets) give theirs.
   * `lingering` bounds the channels kept heard for their history after their last
   * subscriber here left (the app gives its `maxLingeringChannels` and `maxSubscriptions`);
   * `false` drops a local stream as soon as its channel is left on the relay, where no timer
   * may hold the place awake, or where nothing is kept.
   */
  keepHistory(
    optionsOf: (channel: string) => HistoryOptions | undefined,
    store: HistoryStore | null | undefined,
    lingering: LingerLimits | false,
  ): void {
    this.#history?.close();
    this.#history = new HistoryPlace(this.#link, optionsOf, store, lingering);
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
          this.receive(channel, frame);
        },
        (error) => this.#report(error, { phase: "relay" }),
        (channel) => this.subscriberCount(channel),
        (target, code, reason) => this.disconnectHere(target, { code, reason }),
        () => this.#resume(),
      ),
    );
    return this.#opened;
  }

  /**
   * Hears `topic` on the relay for `listener`: a topic of this instance's own (the fallback
   * transport's, `//fallback/INSTANCE`), whose messages go to the listener, never to
   * subscribers. Resolves once joined (never rejects: a relay that cannot join is reported).
   */
  listenDirect(topic: string, listener: (message: string) => void): Promise<void> {
    const relay = this.#relay;
    this.#direct ??= new Map();
    this.#direct.set(topic, listener);
    if (!relay) return Promise.resolve();
    return this.start().then(
      () =>
        Promise.resolve()
          .then(() => relay.join(topic))
          .catch((error: unknown) => this.#report(error, { phase: "relay" })),
      (error: unknown) => this.#openFailed(error),
    );
  }

  /** Sends `message` on another instance's own topic, over the relay. */
  async sendDirect(topic: string, message: string): Promise<void> {
    const relay = this.#relay;
    if (!relay) return;
    await this.start();
    await relay.publish(topic, message);
  }

  /** Closes the connections here that `target` names; how many it closed. */
  disconnectHere(target: DisconnectTarget, close: { code: number; reason: string }): number {
    return disconnectHere(
      this.connections,
      (id) => this.#byId.get(id),
      this.userOf,
      target,
      close,
      this.#report,
    );
  }

  /**
   * Closes the connections `target` names here and, where the relay can ask them, on every
   * other instance; resolves to how many were closed in all.
   */
  async disconnect(
    target: DisconnectTarget,
    close: { code: number; reason: string },
  ): Promise<number> {
    const here = this.disconnectHere(target, close);
    const relay = this.#relay;
    if (!relay?.disconnect) return here;
    await this.start();
    return here + (await relay.disconnect(target, close.code, close.reason));
  }

  /**
   * Adds `subscriber` to `channel`. The first local subscriber of a channel joins it on the
   * relay; the returned promise settles once joined (never rejects: a relay that cannot
   * join is reported, and local broadcasts still reach the subscriber).
   */
  add(channel: string, subscriber: Subscriber): void | Promise<void> {
    if (!this.index.add(channel, subscriber) || !this.#relay) return;
    // Still heard: its last subscriber left less than a ttl ago.
    if (this.#history?.resumeHearing(channel)) return;
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

  /**
   * Removes `subscriber` (or the stand-in it has there) from `channel`; the last local
   * subscriber leaves it on the relay (unless its history keeps it heard a while).
   */
  remove(channel: string, subscriber: Subscriber): void {
    const history = this.#history;
    const standIn = history?.takeStandIn(channel, subscriber);
    if (!this.index.remove(channel, standIn ?? subscriber) || !this.#relay) return;
    if (history?.lastLeft(channel, subscriber)) return;
    this.#leave(channel);
  }

  #leave(channel: string): void {
    const relay = this.#relay;
    if (!relay) return;
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
   * can tell). Never rejects. On a channel with history, the frame is stamped with its
   * offset first: here by a local store, or once for every instance by a shared one.
   */
  publish(channel: string, frame: string, target?: Target): number | Promise<number> {
    if (target && !("except" in target)) {
      // For some connections only: not a broadcast of the channel's stream, never kept.
      const reached = this.#deliverTo(channel, frame, target);
      this.telemetry?.delivered(reached);
      return this.#relayPublish(channel, targetedFrame(target, frame), reached);
    }
    const except = target?.except;
    let stamped = frame;
    const history = this.#history;
    const kept = history?.of(channel);
    if (history && kept) {
      const { options, store } = kept;
      if (store.shared) return history.publishShared(channel, frame, options, store, target);
      stamped = history.stamp(channel, frame, options, store);
    }
    const local =
      except === undefined
        ? this.index.deliver(channel, stamped)
        : this.#deliverExcept(channel, stamped, except);
    // The excluded connection is here: the other instances deliver to all of theirs.
    this.telemetry?.delivered(local);
    return this.#relayPublish(channel, frame, local);
  }

  /**
   * Delivers through the runtime's pub/sub from now on (Bun's topics): broadcasts, and the
   * joins and leaves of presence.
   */
  useNativeDelivery(native: NativeDelivery): void {
    if (this.#native === native) return;
    this.index.useNativeDelivery(native);
    this.#native = native;
    this.#presence?.useNativeDelivery(native);
  }

  /** Records a connection's id (read or given), so that `to(id)` finds it. */
  named(connection: HubConnection): void {
    this.#byId.set(connection.id, connection);
  }

  /** Forgets a connection that closed, by the id it had. */
  unnamed(id: string, connection: Connection<object>): void {
    if (this.#byId.get(id) === connection) this.#byId.delete(id);
  }

  /** Delivers to the subscribers of `channel` here but the connection `except`. */
  #deliverExcept(channel: string, frame: string, except: string): number {
    const excluded = this.#byId.get(except);
    return excluded
      ? this.index.deliverExcept(channel, frame, excluded)
      : this.index.deliver(channel, frame);
  }

  /** Delivers to the subscribers of `channel` here that `target` names (a connection, a user). */
  #deliverTo(
    channel: string,
    frame: string,
    target: { readonly connection: string } | { readonly user: string },
  ): number {
    if ("connection" in target) {
      const connection = this.#byId.get(target.connection);
      return connection?.holds(channel) && connection.deliver(frame) ? 1 : 0;
    }
    let delivered = 0;
    const userOf = this.userOf;
    if (!userOf) return 0;
    for (const connection of this.connections) {
      if (!connection.holds(channel)) continue;
      let user: string | undefined;
      try {
        user = userOf(connection);
      } catch (error) {
        this.#report(error, { connection, channel, phase: "broadcast" });
        continue;
      }
      if (user !== target.user) continue;
      if (connection.deliver(frame)) delivered++;
    }
    return delivered;
  }

  /**
   * A frame another place published on `channel`, delivered here (stamped first by a
   * local history store); how many it reached. What a relay's `receive` calls.
   */
  receive(channel: string, text: string): number {
    const delivered = this.#receive(channel, text);
    this.telemetry?.delivered(delivered);
    return delivered;
  }

  #receive(channel: string, text: string): number {
    const direct = this.#direct?.get(channel);
    if (direct !== undefined) {
      direct(text);
      return 0;
    }
    let frame = text;
    let except: string | undefined;
    if (text.charCodeAt(0) === 35 /* # */) {
      const targeted = splitTargeted(text);
      if (!targeted) return 0;
      if (!("except" in targeted.target)) {
        return this.#deliverTo(channel, targeted.frame, targeted.target);
      }
      frame = targeted.frame;
      except = targeted.target.except;
    }
    if (frame.charCodeAt(0) === 37 /* % */) {
      // A join or leave, from a shared presence store: nobody listens where none was made.
      const excluded = except === undefined ? undefined : this.#byId.get(except);
      return this.#presence?.receive(channel, frame.slice(1), excluded) ?? 0;
    }
    const history = this.#history;
    const kept = history?.of(channel);
    const stamped =
      history && kept && !kept.store.shared
        ? history.stamp(channel, frame, kept.options, kept.store)
        : frame;
    if (!kept?.store.shared) {
      return except === undefined
        ? this.index.deliver(channel, stamped)
        : this.#deliverExcept(channel, stamped, except);
    }
    // Received twice, or held while the channel catches up with what it missed.
    if (history && !history.arrived(channel, stamped, except, this.#deliverCaughtUp)) return 0;
    return this.#deliverShared(channel, stamped, except);
  }

  /** A stamped frame of a shared history store, delivered here; how many it reached. */
  #deliverShared(channel: string, stamped: string, except: string | undefined): number {
    const delivered =
      except === undefined
        ? this.index.deliver(channel, stamped)
        : this.#deliverExcept(channel, stamped, except);
    this.#history?.echoed(channel, stamped, delivered);
    return delivered;
  }

  /**
   * The relay subscribed again after it could not deliver here: the subscribers of
   * channels with a shared history get what they missed meanwhile.
   */
  #resume(): void {
    this.#history
      ?.resume(this.#deliverCaughtUp)
      .catch((error: unknown) => this.#report(error, { phase: "relay" }));
  }

  /** Delivers what a catch-up sends, as a broadcast received. */
  readonly #deliverCaughtUp = (channel: string, frame: string, except: string | undefined) => {
    this.telemetry?.delivered(this.#deliverShared(channel, frame, except));
  };

  /** Hands a frame to the relay, after the `local` deliveries here. */
  #relayPublish(channel: string, frame: string, local: number): number | Promise<number> {
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

  /** How many connections here are subscribed to a concrete channel name. */
  subscriberCount(channel: string): number {
    return this.index.size(channel);
  }

  /**
   * How many connections are subscribed to a concrete channel name here and, where the
   * relay can ask them, on every other instance.
   */
  async countSubscribers(channel: string): Promise<number> {
    const here = this.subscriberCount(channel);
    const relay = this.#relay;
    if (!relay?.countSubscribers) return here;
    await this.start();
    return here + (await relay.countSubscribers(channel));
  }

  /** Closes the relay (and stops hearing channels kept for their history). */
  async close(): Promise<void> {
    this.#history?.close();
    this.#presence?.close();
    if (this.#opened) await this.#opened.catch(() => {});
    await this.#relay?.close();
  }
}
