import type {
  HistoryOptions,
  HistoryStore,
  Latest,
  LocalHistoryStore,
  Recovery,
  SharedHistoryStore,
  StreamPosition,
} from "../history/history.ts";
import { MemoryHistory } from "../history/memory-history.ts";
import { SharedRecoveries } from "../history/shared-recoveries.ts";
import { positionOf } from "../history/stamp.ts";
import { CatchUp, type CatchUpPlace } from "./catch-up.ts";
import { lateSettlement } from "./late.ts";
import type { PlaceLink } from "./place-link.ts";
import type { Subscriber } from "./subscriber.ts";
import { UnstampedOrder } from "./unstamped-order.ts";

/** The most channels kept heard for their history after their last subscriber left. */
export interface LingerLimits {
  /** In all: past it, the oldest stops being heard. */
  readonly perPlace: number;
  /** Those one connection left last. */
  readonly perConnection: number;
}

/** The history of one channel here: its options and where it is kept. */
export interface ChannelHistory {
  readonly options: HistoryOptions;
  readonly store: HistoryStore;
}

/**
 * The history of one place's channels: where it is kept (as chosen, else the relay's
 * shared store, else memory), the offsets broadcasts are stamped with, the channels kept
 * heard for their history's ttl after their last subscriber here left (within
 * {@link LingerLimits}), the broadcasts of a shared store waiting for their own copy, and
 * the stand-ins a recovering subscribe puts in the index.
 *
 * A hub makes it when the app declares its first channel with history.
 */
export class HistoryPlace {
  /** The history options of a concrete channel name, as the app declared them. */
  readonly optionsOf: (channel: string) => HistoryOptions | undefined;
  readonly #link: PlaceLink;
  /**
   * Where this place keeps history, as chosen: `null` where it holds no connections (a
   * Worker), `undefined` for the default (the relay's shared store, else memory).
   */
  readonly #choice: HistoryStore | null | undefined;
  #memory: MemoryHistory | undefined;
  /** `false` where no timer may keep the place awake: a channel left forgets its stream. */
  readonly #lingerLimits: LingerLimits | false;
  /**
   * History channels that lost their last subscriber here, still heard until the timer
   * (the oldest first), each with the count of its connection that left it last.
   */
  readonly #lingering = new Map<string, Lingering>();
  /** How many lingering channels each connection left last. */
  readonly #lingeringBy = new WeakMap<Subscriber, { count: number }>();
  /** Broadcasts of a shared history store waiting for their own copy to come back. */
  readonly #echoes = new Map<string, Echo[]>();
  /** The last position received here per channel of a shared history store with subscribers. */
  readonly #heard = new Map<string, StreamPosition>();
  /** What the subscribers here missed while the relay was away, sent once it is back. */
  readonly #catchUp = new CatchUp();
  /** The order in which broadcasts the broker failed reach the subscribers here. */
  readonly #unstamped = new UnstampedOrder();
  /** The shared reads of recoveries, per shared store. */
  readonly #sharedRecoveries = new WeakMap<SharedHistoryStore, SharedRecoveries>();
  /** Subscribers that a stand-in replaces in the index, per channel, for a while. */
  readonly #standIns = new Map<Subscriber, Map<string, Subscriber>>();

  constructor(
    link: PlaceLink,
    optionsOf: (channel: string) => HistoryOptions | undefined,
    store: HistoryStore | null | undefined,
    lingerLimits: LingerLimits | false,
  ) {
    this.#link = link;
    this.optionsOf = optionsOf;
    this.#choice = store;
    this.#lingerLimits = lingerLimits;
  }

  /**
   * What this place keeps of history, for the dashboard: the streams and bytes of its
   * memory store, `"shared"` when a shared store keeps it (Redis), `undefined` for none.
   */
  get usage(): { streams: number; bytes: number } | "shared" | undefined {
    const store =
      this.#choice === undefined ? (this.#link.relay?.history ?? this.#memory) : this.#choice;
    if (!store) return undefined;
    if (store.shared) return "shared";
    const kept = store as { readonly streams?: unknown; readonly bytes?: unknown };
    return typeof kept.streams === "number" && typeof kept.bytes === "number"
      ? { streams: kept.streams, bytes: kept.bytes }
      : undefined;
  }

  /** Where this place keeps history now: as chosen, else the relay's shared store, else memory. */
  get #store(): HistoryStore | undefined {
    const choice = this.#choice;
    if (choice !== undefined) return choice ?? undefined;
    const shared = this.#link.relay?.history;
    if (shared) return shared;
    this.#memory ??= new MemoryHistory();
    return this.#memory;
  }

  /** The history of `channel` here, or `undefined` when it has none (or this place keeps none). */
  of(channel: string): ChannelHistory | undefined {
    const options = this.optionsOf(channel);
    const store = options && this.#store;
    return options && store ? { options, store } : undefined;
  }

  /**
   * The recovery of a subscribe to `channel` from `since`: from a shared store, reads of
   * one channel asked at once are shared ({@link SharedRecoveries}), so that a reconnect
   * storm reads each channel about twice instead of once per client.
   */
  recover(
    channel: string,
    history: ChannelHistory,
    since: StreamPosition | undefined,
    maxBytes: number,
  ): Recovery | Promise<Recovery> {
    const { store, options } = history;
    if (!store.shared) return store.recover(channel, since, options, maxBytes);
    let shared = this.#sharedRecoveries.get(store);
    if (!shared) {
      shared = new SharedRecoveries(store);
      this.#sharedRecoveries.set(store, shared);
    }
    return shared.recover(channel, since, options, maxBytes);
  }

  /** A frame stamped by a local store; unstamped (and reported) if the store fails. */
  stamp(channel: string, frame: string, options: HistoryOptions, store: LocalHistoryStore): string {
    try {
      return store.append(channel, frame, options);
    } catch (error) {
      this.#link.report(error, { channel, phase: "broadcast" });
      return frame;
    }
  }

  /**
   * A broadcast on a channel whose history every instance shares: the store stamps it and
   * carries it to every instance, this one included. It resolves once this place's
   * subscribers got their copy, so that a handler that awaits it answers after them.
   */
  publishShared(
    channel: string,
    frame: string,
    options: HistoryOptions,
    store: SharedHistoryStore,
    target: { readonly except: string } | undefined,
  ): Promise<number> {
    const link = this.#link;
    const here = () =>
      target
        ? link.deliverExcept(channel, frame, target.except)
        : link.index.deliver(channel, frame);
    const place = this.#unstamped.enter(channel);
    const failed = () =>
      this.#unstamped.settle(channel, place, { deliver: here, bytes: frame.length });
    return link.start().then(
      async () => {
        let offset: number;
        try {
          offset = await store.publish(channel, frame, options, target);
        } catch (error) {
          link.report(error, { channel, phase: "relay" });
          // Late: the broker may still keep and carry it, and its copy reach the subscribers
          // here, stamped. They get it without an offset only once the broker failed it.
          const late = lateSettlement(error);
          if (late) {
            late.then(() => this.#unstamped.settle(channel, place), failed);
            return 0;
          }
          // Not kept, not carried: the subscribers here still get it, without an offset,
          // after the broadcasts before it (whoever waited goes on if they are late).
          return failed();
        }
        this.#unstamped.settle(channel, place);
        if (!link.index.has(channel)) return 0;
        // Its copy may have come back before the store's answer did.
        if ((this.#heard.get(channel)?.offset ?? 0) >= offset) return link.index.size(channel);
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
        link.openFailed(error);
        return failed();
      },
    );
  }

  /**
   * A stamped frame of a shared store came back, `delivered` to subscribers here: the
   * broadcasts waiting for it (or an earlier one) resolve.
   */
  echoed(channel: string, frame: string, delivered: number): void {
    const position = positionOf(frame);
    if (position === undefined) return;
    const { offset } = position;
    if (this.#link.index.has(channel)) this.#heard.set(channel, position);
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

  /**
   * The offset of the last broadcast of a shared history store heard here on `channel`,
   * while it has subscribers here.
   */
  heardOffset(channel: string): number | undefined {
    return this.#heard.get(channel)?.offset;
  }

  /**
   * Whether a stamped frame of a shared store received on `channel` is to be delivered
   * now. Not when it was heard here already (its offset, in the epoch heard last, not past
   * the last one heard: a cluster's client may deliver a message twice while it subscribes
   * again), nor while the channel catches up with what it missed (it is held, and sent
   * after). A frame past the next offset heard (or past the first of a new epoch) shows
   * that broadcasts before it were missed here: the channel catches up first
   * ({@link resume}'s way), through `deliver`.
   */
  arrived(
    channel: string,
    frame: string,
    except: string | undefined,
    deliver: (channel: string, frame: string, except: string | undefined) => void,
  ): boolean {
    const heard = this.#heard.get(channel);
    const position = heard && positionOf(frame);
    if (heard && position) {
      const sameEpoch = position.epoch === heard.epoch;
      if (sameEpoch && position.offset <= heard.offset) return false;
      if (position.offset > (sameEpoch ? heard.offset + 1 : 1)) {
        this.#catchUp
          .channel(this.#catchUpPlace(deliver), channel, heard)
          .catch((error: unknown) => this.#link.report(error, { channel, phase: "relay" }));
      }
    }
    return !this.#catchUp.hold(channel, frame, except);
  }

  /**
   * The relay subscribed again after it could not deliver here (an outage, a failover):
   * each channel of a shared store with subscribers here gets, through `deliver`, what its
   * stream kept after the last broadcast heard here, then what came meanwhile, once each.
   */
  resume(
    deliver: (channel: string, frame: string, except: string | undefined) => void,
  ): Promise<void> {
    return this.#catchUp.run(this.#catchUpPlace(deliver));
  }

  #catchUpPlace(
    deliver: (channel: string, frame: string, except: string | undefined) => void,
  ): CatchUpPlace {
    const heard = this.#heard;
    const index = this.#link.index;
    return {
      *heard() {
        for (const entry of heard) if (index.has(entry[0])) yield entry;
      },
      of: (channel) => this.of(channel),
      deliver,
      report: (error, channel) => this.#link.report(error, { channel, phase: "relay" }),
    };
  }

  /**
   * The last `count` broadcasts kept of `channel` (at most its history's `size`), stamped,
   * oldest first, and where its stream is; `undefined` for a channel without history, or
   * a store that cannot say.
   */
  async latest(channel: string, count: number): Promise<Latest | undefined> {
    const history = this.of(channel);
    const latest = history?.store.latest?.bind(history.store);
    if (!history || !latest) return undefined;
    if (history.store.shared) await this.#link.start();
    return latest(channel, Math.min(count, history.options.size), history.options);
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

  /** The stand-in `subscriber` has on `channel`, if any, which stands down. */
  takeStandIn(channel: string, subscriber: Subscriber): Subscriber | undefined {
    const standIn = this.#standIns.get(subscriber)?.get(channel);
    if (standIn) this.standDown(channel, subscriber);
    return standIn;
  }

  /**
   * The last subscriber here (`by`) left `channel`: broadcasts waiting for their copy need
   * wait no more, and a local stream is kept whole while it is heard (its ttl, within the
   * limits), else dropped. Says whether the channel stays heard on the relay.
   */
  lastLeft(channel: string, by: Subscriber): boolean {
    this.#heard.delete(channel);
    for (const echo of [...(this.#echoes.get(channel) ?? [])]) this.#settleEcho(channel, echo, 0);
    const history = this.of(channel);
    // Not heard any more, a local stream would have holes. A stream that keeps nothing is
    // dropped at once: hearing it longer would keep only the interest.
    if (!history || history.store.shared || this.#link.relay?.hearsEverything?.(channel)) {
      return false;
    }
    if (history.store.holds?.(channel) === false || !this.#mayLinger(by)) {
      history.store.forget(channel);
      return false;
    }
    this.#linger(channel, history.options.ttl, history.store, by);
    return true;
  }

  /** A channel subscribed again here: says whether it was still heard (lingering). */
  resumeHearing(channel: string): boolean {
    return this.#endLingering(channel) !== undefined;
  }

  /** How many channels are kept heard for their history after their last subscriber left. */
  get lingeringCount(): number {
    return this.#lingering.size;
  }

  /** Whether `subscriber` may leave one more channel heard; makes room in all if need be. */
  #mayLinger(subscriber: Subscriber): boolean {
    if (!this.#lingerLimits) return false;
    const { perPlace, perConnection } = this.#lingerLimits;
    if ((this.#lingeringBy.get(subscriber)?.count ?? 0) >= perConnection) return false;
    if (perPlace <= 0) return false;
    for (const channel of this.#lingering.keys()) {
      if (this.#lingering.size < perPlace) break;
      this.#stopHearing(channel);
    }
    return true;
  }

  #linger(channel: string, ttl: number, store: LocalHistoryStore, by: Subscriber): void {
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

  /** Ends a channel's lingering, if it lingers. */
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
    this.#link.leaveRelay(channel);
  }

  /** Stops hearing the channels kept for their history (the relay closes). */
  close(): void {
    for (const { timer } of this.#lingering.values()) clearTimeout(timer);
    this.#lingering.clear();
  }
}

/** A channel kept heard for its history after its last subscriber here left. */
interface Lingering {
  readonly timer: ReturnType<typeof setTimeout>;
  readonly store: LocalHistoryStore;
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
