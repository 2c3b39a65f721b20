import type { AppView, Connection, ErrorInfo } from "../context.ts";
import type { HistoryOptions, HistoryStore, Latest } from "../history/history.ts";
import { MemoryHistory } from "../history/memory-history.ts";
import { offsetOf } from "../history/stamp.ts";
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
import { appViewOf } from "./app-view.ts";
import type { Relay } from "./relay.ts";
import { wasReported } from "./reported.ts";
import type { HubConnection, NativeDelivery, Subscriber } from "./subscriber.ts";
import { SubscriberIndex } from "./subscriber-index.ts";
import { splitTargeted, type Target, targetedFrame } from "./target.ts";

/**
 * Subscriptions and broadcasts for one place that holds connections (a process, a Durable
 * Object): its connections, the local {@link SubscriberIndex}, and an optional
 * {@link Relay} to the other places. Handlers see it as `ctx.app`. A broadcast reaches the local subscribers first, synchronously, then goes to
 * the relay; the relay is joined to a channel while the place has subscribers of it.
 *
 * A relay's failures never fail a local broadcast or a subscribe: they go to the app's
 * error hook, and local delivery goes on.
 */
export class Hub {
  /** Who is subscribed here. */
  readonly index: SubscriberIndex = new SubscriberIndex();
  /** The runtime's pub/sub, once an adapter lent it. */
  #native: NativeDelivery | undefined;
  /** Who is here on each channel with presence. */
  readonly presence: PresenceRegistry = new PresenceRegistry();
  /** The subscribers that asked to hear joins and leaves, per channel. */
  readonly presenceListeners: SubscriberIndex = new SubscriberIndex();
  /** The connections this place holds. */
  readonly connections: Set<HubConnection> = new Set();
  /** The connections whose id was read or given, by id: what `to(id)` looks up. */
  readonly #byId = new Map<string, HubConnection>();
  /** The user a connection belongs to (the app's `userId`), for `toUser`. */
  userOf: ((connection: Connection<object>) => string | undefined) | undefined;
  /** Told how many subscribers each delivery reached here, for the app's metrics. */
  telemetry: { delivered(count: number): void } | undefined;
  #relay: Relay | undefined;
  #opened: Promise<void> | undefined;
  /** Whether the relay's failure to open was told to the app (once, not per broadcast). */
  #openFailureReported = false;
  readonly #report: (error: unknown, info: ErrorInfo) => void;
  /** The history of a concrete channel name, when its declaration has one. */
  #historyOptions: ((channel: string) => HistoryOptions | undefined) | undefined;
  /**
   * Where this place keeps history, as chosen: `null` where it holds no connections (a
   * Worker), `undefined` for the default (the relay's shared store, else memory).
   */
  #historyChoice: HistoryStore | null | undefined;
  #memoryHistory: MemoryHistory | undefined;
  /** Whether a channel left on the relay keeps being heard for its history's ttl. */
  #lingers = true;
  /**
   * History channels that lost their last subscriber here, still heard until the timer
   * (the oldest first), each with the count of its connection that left it last.
   */
  readonly #lingering = new Map<string, Lingering>();
  /** Members whose last connection left, until their leave delay is over. */
  readonly #leaving = new Map<string, ReturnType<typeof setTimeout>>();
  /** How long a member whose last connection left stays before its leave (ms; 0: none). */
  presenceLeaveDelay = DEFAULT_PRESENCE_LEAVE_DELAY_MS;
  /** The members listings subscribes were given lately, per channel (the oldest first). */
  readonly #listings = new Map<string, { json: string; count: number; at: number }>();
  /** Subscribers that a stand-in replaces in the index, per channel, for a while. */
  readonly #standIns = new Map<Subscriber, Map<string, Subscriber>>();
  /** How many lingering channels each connection left last. */
  readonly #lingeringBy = new WeakMap<Subscriber, { count: number }>();
  /**
   * The most channels kept heard for their history after their last subscriber left: in
   * all (past it, the oldest stops being heard), and those one connection left last.
   */
  lingerLimits: { readonly perPlace: number; readonly perConnection: number } = {
    perPlace: 10_000,
    perConnection: 100,
  };
  /** Broadcasts of a shared history store waiting for their own copy to come back. */
  readonly #echoes = new Map<string, Echo[]>();
  /** The last offset received here per channel of a shared history store with subscribers. */
  readonly #heard = new Map<string, number>();

  constructor(report: (error: unknown, info: ErrorInfo) => void, relay?: Relay) {
    // What a relay told the app already (an outage, once) is not told again per broadcast.
    this.#report = (error, info) => {
      if (!wasReported(error)) report(error, info);
    };
    this.#relay = relay;
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
    if (this.#endLingering(channel)) {
      // Still heard: its last subscriber left less than a ttl ago.
      return;
    }
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
   * subscriber leaves it on the relay.
   */
  remove(channel: string, subscriber: Subscriber): void {
    const standIn = this.#standIns.get(subscriber)?.get(channel);
    if (standIn) this.standDown(channel, subscriber);
    if (!this.index.remove(channel, standIn ?? subscriber) || !this.#relay) return;
    this.#heard.delete(channel);
    // Nobody here to deliver to: broadcasts waiting for their copy need wait no more.
    for (const echo of [...(this.#echoes.get(channel) ?? [])]) this.#settleEcho(channel, echo, 0);
    const options = this.#historyOptions?.(channel);
    const store = options && this.#historyStore;
    // Not heard any more, a local stream would have holes: it is kept whole while it is heard
    // (its ttl, where timers may run, within the limits), then dropped. A stream that keeps
    // nothing is dropped at once: hearing it longer would keep only the interest.
    if (options && store && !store.shared && !this.#relay.hearsEverything?.(channel)) {
      if (!this.#lingers || store.holds?.(channel) === false || !this.#mayLinger(subscriber)) {
        store.forget(channel);
      } else {
        this.#linger(channel, options.ttl, store, subscriber);
        return;
      }
    }
    this.#leave(channel);
  }

  /**
   * `standIn` takes the place of `subscriber` on `channel` in the index for a while (it
   * filters what a recovery already sent): removing `subscriber` removes it.
   */
  standIn(channel: string, subscriber: Subscriber, standIn: Subscriber): void {
    let channels = this.#standIns.get(subscriber);
    if (!channels) {
      channels = new Map();
      this.#standIns.set(subscriber, channels);
    }
    channels.set(channel, standIn);
  }

  /** The stand-in of `subscriber` on `channel` is gone (it handed over, or was removed). */
  standDown(channel: string, subscriber: Subscriber): void {
    const channels = this.#standIns.get(subscriber);
    if (!channels?.delete(channel)) return;
    if (channels.size === 0) this.#standIns.delete(subscriber);
  }

  /** How many channels are kept heard for their history after their last subscriber left. */
  get lingeringCount(): number {
    return this.#lingering.size;
  }

  /** Whether `subscriber` may leave one more channel heard; makes room in all if need be. */
  #mayLinger(subscriber: Subscriber): boolean {
    const { perPlace, perConnection } = this.lingerLimits;
    if ((this.#lingeringBy.get(subscriber)?.count ?? 0) >= perConnection) return false;
    if (perPlace <= 0) return false;
    for (const channel of this.#lingering.keys()) {
      if (this.#lingering.size < perPlace) break;
      this.#stopHearing(channel);
    }
    return true;
  }

  #linger(channel: string, ttl: number, store: HistoryStore & { shared: false }, by: Subscriber) {
    let count = this.#lingeringBy.get(by);
    if (!count) {
      count = { count: 0 };
      this.#lingeringBy.set(by, count);
    }
    count.count++;
    const timer = setTimeout(() => this.#stopHearing(channel), ttl);
    (timer as { unref?: () => void }).unref?.();
    this.#lingering.set(channel, { timer, store, by: count });
  }

  /** Ends a channel's lingering, if it lingers; says whether it did. */
  #endLingering(channel: string): Lingering | undefined {
    const lingering = this.#lingering.get(channel);
    if (!lingering) return undefined;
    clearTimeout(lingering.timer);
    this.#lingering.delete(channel);
    lingering.by.count--;
    return lingering;
  }

  /** A lingering channel is heard no more: its stream is dropped, the relay left. */
  #stopHearing(channel: string): void {
    const lingering = this.#endLingering(channel);
    if (!lingering) return;
    lingering.store.forget(channel);
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
    const options = this.#historyOptions?.(channel);
    const store = options && this.#historyStore;
    if (store?.shared) {
      return this.#publishShared(
        channel,
        frame,
        options as HistoryOptions,
        target as { readonly except: string } | undefined,
      );
    }
    const stamped = store ? this.#stamp(store, channel, frame, options as HistoryOptions) : frame;
    const local = target
      ? this.#deliverExcept(channel, stamped, (target as { except: string }).except)
      : this.index.deliver(channel, stamped);
    // The excluded connection is here: the other instances deliver to all of theirs.
    this.telemetry?.delivered(local);
    return this.#relayPublish(channel, frame, local);
  }

  /**
   * Delivers through the runtime's pub/sub from now on (Bun's topics): broadcasts, and the
   * joins and leaves of presence, on topics of their own (`//presence/` and the channel: no
   * concrete name of a declared channel starts with an empty segment).
   */
  useNativeDelivery(native: NativeDelivery): void {
    if (this.#native === native) return;
    this.index.useNativeDelivery(native);
    this.#native = native;
    this.presenceListeners.useNativeDelivery({
      join: (channel, subscriber) => native.join(PRESENCE_TOPIC + channel, subscriber),
      leave: (channel, subscriber) => native.leave(PRESENCE_TOPIC + channel, subscriber),
      publish: (channel, frame) => native.publish(PRESENCE_TOPIC + channel, frame),
      publishExcept: (channel, frame, excluded) =>
        native.publishExcept(PRESENCE_TOPIC + channel, frame, excluded),
    });
  }

  /** Presence every instance shares, when the relay offers it (Redis). */
  get sharedPresence(): SharedPresenceStore | undefined {
    return this.#relay?.presence;
  }

  /**
   * A connection of `member` entered the presence of `channel`: when it is the member's
   * first (here, or in the cluster with a shared store), the others listening hear `join`.
   * A member whose last connection left less than the leave delay ago is back: nobody
   * hears anything (neither the leave nor a join).
   */
  joinPresence(
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
      this.presence.join(channel, member, info);
      return;
    }
    const frame = joinFrame(channel, member, info);
    // This instance's own share is counted with or without a shared store: a store that
    // records each instance's share (Workers) is told it, and it survives a wake.
    const first = this.presence.join(channel, member, info);
    const shared = this.sharedPresence;
    if (shared) {
      const here = this.presence.connectionsOf(channel, member);
      return this.start()
        .then(() => shared.join(channel, member, info, frame, connection.id, here))
        .catch((error: unknown) => this.#report(error, { channel, phase: "relay" }));
    }
    if (first)
      this.telemetry?.delivered(this.presenceListeners.deliverExcept(channel, frame, connection));
  }

  /**
   * A connection of `member` left: when it was the member's last, the listeners hear
   * `leave`, after the leave delay (unless it comes back meanwhile): a member that toggles
   * its presence makes at most a join and a leave per delay, whatever it sends.
   */
  leavePresence(channel: string, member: string): void {
    this.#listings.delete(channel);
    const delay = this.presenceLeaveDelay;
    if (delay > 0 && this.presence.leave(channel, member, true)) {
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
    const last = this.presence.leave(channel, member);
    if (this.sharedPresence) this.#leftShared(channel, member);
    else if (last) this.#announceLeave(channel, member);
  }

  /** The leave delay of a member's last connection is over: it leaves, if it is still leaving. */
  #leftFor(key: string, channel: string, member: string): void {
    this.#leaving.delete(key);
    if (!this.presence.expire(channel, member)) return;
    this.#listings.delete(channel);
    if (this.sharedPresence) this.#leftShared(channel, member);
    else this.#announceLeave(channel, member);
  }

  /** Tells a shared store this instance's share of `member` after one of its connections left. */
  #leftShared(channel: string, member: string): void {
    const shared = this.sharedPresence;
    if (!shared) return;
    const here = this.presence.connectionsOf(channel, member);
    shared
      .leave(channel, member, leaveFrame(channel, member), here)
      .catch((error: unknown) => this.#report(error, { channel, phase: "relay" }));
  }

  #announceLeave(channel: string, member: string): void {
    this.telemetry?.delivered(this.presenceListeners.deliver(channel, leaveFrame(channel, member)));
  }

  /** How many members `channel` has, and how many connections they subscribed. */
  presenceCount(channel: string): PresenceCount | Promise<PresenceCount> {
    const shared = this.sharedPresence;
    if (shared) return this.start().then(() => shared.count(channel));
    return {
      members: this.presence.count(channel),
      connections: this.presence.connections(channel),
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
      json: this.presence.membersJson(channel, limit, maxBytes),
      count: this.presence.count(channel),
    });
    const shared = this.sharedPresence;
    if (!shared) return here();
    // The broker cannot answer: this instance's own members, rather than none.
    return this.start()
      .then(() => shared.members(channel, limit, maxBytes))
      .catch((error: unknown) => {
        this.#report(error, { channel, phase: "relay" });
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
      if ((connection as Connection<object> & Subscriber).deliver(frame)) delivered++;
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
      // A join or leave, from a shared presence store: for the listeners, not the subscribers.
      this.#listings.delete(channel);
      const event = frame.slice(1);
      const excluded = except === undefined ? undefined : this.#byId.get(except);
      return excluded
        ? this.presenceListeners.deliverExcept(channel, event, excluded)
        : this.presenceListeners.deliver(channel, event);
    }
    const options = this.#historyOptions?.(channel);
    const store = options && this.#historyStore;
    const stamped =
      store && !store.shared
        ? this.#stamp(store, channel, frame, options as HistoryOptions)
        : frame;
    const delivered =
      except === undefined
        ? this.index.deliver(channel, stamped)
        : this.#deliverExcept(channel, stamped, except);
    if (store?.shared) this.#echoed(channel, stamped, delivered);
    return delivered;
  }

  /**
   * Keeps history for the channels `optionsOf` gives options for, in `store`. Apps call it
   * when they get a channel with history; adapters whose places keep it elsewhere (a
   * Durable Object's storage) or nowhere (a Worker without sockets) give theirs.
   * `lingers: false` drops a local stream as soon as its channel is left on the relay,
   * where no timer may hold the place awake.
   */
  keepHistory(
    optionsOf: (channel: string) => HistoryOptions | undefined,
    store?: HistoryStore | null,
    lingers = true,
  ): void {
    this.#historyOptions = optionsOf;
    this.#historyChoice = store;
    this.#lingers = lingers;
  }

  /** Where this place keeps history now: as chosen, else the relay's shared store, else memory. */
  get #historyStore(): HistoryStore | undefined {
    const choice = this.#historyChoice;
    if (choice !== undefined) return choice ?? undefined;
    const shared = this.#relay?.history;
    if (shared) return shared;
    this.#memoryHistory ??= new MemoryHistory();
    return this.#memoryHistory;
  }

  /** The history of `channel` here: its options and store, or `undefined` when it has none. */
  historyOf(channel: string): { options: HistoryOptions; store: HistoryStore } | undefined {
    const options = this.#historyOptions?.(channel);
    const store = this.#historyStore;
    return options && store ? { options, store } : undefined;
  }

  /**
   * The last `count` broadcasts kept of `channel` (at most its history's `size`), stamped,
   * oldest first, and where its stream is; `undefined` for a channel without history, or
   * a store that cannot say.
   */
  async latest(channel: string, count: number): Promise<Latest | undefined> {
    const history = this.historyOf(channel);
    const latest = history?.store.latest?.bind(history.store);
    if (!history || !latest) return undefined;
    if (history.store.shared) await this.start();
    return latest(channel, Math.min(count, history.options.size), history.options);
  }

  /** The history options of a channel, as this hub's app declared them. */
  get historyOptions(): ((channel: string) => HistoryOptions | undefined) | undefined {
    return this.#historyOptions;
  }

  /** A frame stamped by a local store; unstamped (and reported) if the store fails. */
  #stamp(
    store: HistoryStore & { shared: false },
    channel: string,
    frame: string,
    options: HistoryOptions,
  ): string {
    try {
      return store.append(channel, frame, options);
    } catch (error) {
      this.#report(error, { channel, phase: "broadcast" });
      return frame;
    }
  }

  /**
   * A broadcast on a channel whose history every instance shares: the store stamps it and
   * carries it to every instance, this one included. It resolves once this place's
   * subscribers got their copy, so that a handler that awaits it answers after them.
   */
  #publishShared(
    channel: string,
    frame: string,
    options: HistoryOptions,
    target: { readonly except: string } | undefined,
  ): Promise<number> {
    const store = this.#historyStore as HistoryStore & { shared: true };
    return this.start().then(
      async () => {
        let offset: number;
        try {
          offset = await store.publish(channel, frame, options, target);
        } catch (error) {
          // Not kept, not carried: the subscribers here still get it, without an offset.
          this.#report(error, { channel, phase: "relay" });
          return target
            ? this.#deliverExcept(channel, frame, target.except)
            : this.index.deliver(channel, frame);
        }
        if (!this.index.has(channel)) return 0;
        // Its copy may have come back before the store's answer did.
        if ((this.#heard.get(channel) ?? 0) >= offset) return this.index.size(channel);
        return new Promise<number>((resolve) => {
          const echo: Echo = { offset, resolve, timer: undefined };
          echo.timer = setTimeout(() => this.#settleEcho(channel, echo, 0), ECHO_TIMEOUT_MS);
          (echo.timer as { unref?: () => void }).unref?.();
          const waiting = this.#echoes.get(channel);
          if (waiting) waiting.push(echo);
          else this.#echoes.set(channel, [echo]);
        });
      },
      (error: unknown) => {
        this.#openFailed(error);
        return target
          ? this.#deliverExcept(channel, frame, target.except)
          : this.index.deliver(channel, frame);
      },
    );
  }

  /** A stamped frame came back: the broadcasts waiting for it (or an earlier one) resolve. */
  #echoed(channel: string, frame: string, delivered: number): void {
    const offset = offsetOf(frame);
    if (offset === undefined) return;
    if (this.index.has(channel)) this.#heard.set(channel, offset);
    const waiting = this.#echoes.get(channel);
    if (!waiting) return;
    for (const echo of [...waiting]) {
      if (echo.offset <= offset)
        this.#settleEcho(channel, echo, echo.offset === offset ? delivered : 0);
    }
  }

  #settleEcho(channel: string, echo: Echo, delivered: number): void {
    if (echo.timer !== undefined) clearTimeout(echo.timer);
    const waiting = this.#echoes.get(channel);
    if (!waiting) return;
    const at = waiting.indexOf(echo);
    if (at < 0) return;
    waiting.splice(at, 1);
    if (waiting.length === 0) this.#echoes.delete(channel);
    echo.resolve(delivered);
  }

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

  /**
   * The offset of the last broadcast of a shared history store heard here on `channel`,
   * while it has subscribers here.
   */
  heardOffset(channel: string): number | undefined {
    return this.#heard.get(channel);
  }

  /** How many subscribers `channel` has here, or how many channels have any without an argument. */
  size(channel?: string): number {
    return this.index.size(channel);
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
    for (const { timer } of this.#lingering.values()) clearTimeout(timer);
    this.#lingering.clear();
    // Members leaving leave now: the other instances need not wait for their heartbeat.
    for (const [key, timer] of [...this.#leaving]) {
      clearTimeout(timer);
      const [channel, member] = splitLeavingKey(key);
      this.#leftFor(key, channel, member);
    }
    if (this.#opened) await this.#opened.catch(() => {});
    await this.#relay?.close();
  }
}

/** A channel kept heard for its history after its last subscriber here left. */
interface Lingering {
  readonly timer: ReturnType<typeof setTimeout>;
  readonly store: HistoryStore & { shared: false };
  /** How many lingering channels the connection that left it last left. */
  readonly by: { count: number };
}

/** How long a broadcast through a shared history store waits for its own copy. */
const ECHO_TIMEOUT_MS = 5000;

/** A broadcast through a shared history store, waiting for its copy to reach this place. */
interface Echo {
  readonly offset: number;
  readonly resolve: (delivered: number) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
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
