import type { SharedHistoryStore } from "../history/history.ts";
import type { SharedPresenceStore } from "../presence/presence-registry.ts";
import type { DisconnectTarget } from "./disconnect.ts";

/**
 * Carries broadcasts between the instances of an app (processes, machines, Durable
 * Objects). A relay hears only the channels its instance has subscribers of: the hub joins
 * a channel upstream when it gets its first local subscriber, and leaves it with the last,
 * so that a broadcast costs the cluster one publish and one delivery per instance that
 * needs it.
 *
 * @example
 * ```ts
 * import type { Relay } from "socketapi";
 *
 * // Everything a relay does, over an in-memory bus that two apps in one process share.
 * const bus = new EventTarget();
 * export function busRelay(): Relay {
 *   const joined = new Set<string>();
 *   let listener: ((event: Event) => void) | undefined;
 *   return {
 *     open(receive) {
 *       listener = (event) => {
 *         const { channel, frame, from } = (event as CustomEvent).detail;
 *         if (from !== joined && joined.has(channel)) receive(channel, frame);
 *       };
 *       bus.addEventListener("frame", listener);
 *     },
 *     join: (channel) => void joined.add(channel),
 *     leave: (channel) => void joined.delete(channel),
 *     publish(channel, frame) {
 *       bus.dispatchEvent(new CustomEvent("frame", { detail: { channel, frame, from: joined } }));
 *       return undefined;
 *     },
 *     async close() {
 *       if (listener) bus.removeEventListener("frame", listener);
 *     },
 *   };
 * }
 * ```
 */
export interface Relay {
  /**
   * Starts the relay: `receive` is called with every frame another instance published on
   * a channel this one joined; `report` tells the app's `onError` of a failure no call
   * returns (the broker went away). The hub calls it once, before the first join; a relay
   * that cannot start (wrong address, wrong credentials) rejects, saying why. `resumed` is
   * called each time the relay subscribed again after it could not deliver (an outage, a
   * failover): the hub then sends its subscribers what they missed, where a shared history
   * kept it.
   */
  open(
    receive: (channel: string, frame: string) => void,
    report: (error: unknown) => void,
    countHere?: (channel: string) => number,
    disconnectHere?: (target: DisconnectTarget, code: number, reason: string) => number,
    resumed?: () => void,
  ): void | Promise<void>;
  /**
   * This instance has its first subscriber of `channel`: receive its broadcasts from now
   * on. The subscriber is told `subscribed` once this settles.
   */
  join(channel: string): void | Promise<void>;
  /** This instance lost its last subscriber of `channel`: stop receiving it. */
  leave(channel: string): void | Promise<void>;
  /**
   * Carries `frame` to the other instances with subscribers of `channel` (not back to this
   * one: its subscribers were served locally). Returns how many subscribers it reached
   * elsewhere where the relay can tell, else `undefined`.
   */
  publish(channel: string, frame: string): number | undefined | Promise<number | undefined>;
  /** Stops the relay. */
  close(): Promise<void>;
  /**
   * How many connections are subscribed to `channel` on the other instances, where the
   * relay can ask them (`app.countSubscribers` adds this instance's own).
   */
  countSubscribers?(channel: string): Promise<number>;
  /**
   * Closes the connections `target` names on the other instances (each calls the
   * `disconnectHere` it was opened with); resolves to how many they closed.
   */
  disconnect?(target: DisconnectTarget, code: number, reason: string): Promise<number>;
  /** What the relay has carried and lost so far, where it counts it. */
  readonly stats?: RelayStats | undefined;
  /** Whether the relay carries broadcasts now, where it can tell (a broker relay does). */
  readonly health?: RelayHealth | undefined;
  /**
   * A history store every instance shares, where the broker can keep one (Redis Streams):
   * channels with history then recover on any instance. Without it, each instance keeps its
   * own history in memory.
   */
  readonly history?: SharedHistoryStore | undefined;
  /**
   * Presence every instance shares, where the broker can keep it (Redis): members counted
   * across the cluster. Without it, each instance knows its own members.
   */
  readonly presence?: SharedPresenceStore | undefined;
  /**
   * Whether this instance hears every broadcast of `channel` even without subscribers of
   * it (`false`, or absent, for a relay that routes by interest). A place that does keeps
   * a channel's local history whole without staying joined to it.
   */
  hearsEverything?(channel: string): boolean;
}

/**
 * Whether a relay carries broadcasts between instances now.
 *
 * @example
 * ```ts
 * import type { RelayHealth } from "socketapi";
 *
 * const ok = (health: RelayHealth) => health.status !== "down";
 * ```
 */
export interface RelayHealth {
  /**
   * `ok`; `degraded` while part of the broker fails (a cluster's node), and for a few
   * seconds after broadcasts were lost or a command failed; `down` while the broker is
   * unreachable (local broadcasts still work).
   */
  readonly status: "ok" | "degraded" | "down";
  /** Since when it is so (ms since the epoch). */
  readonly since: number;
  /** Why it is not `ok`. */
  readonly reason?: string;
}

/** A relay's counters, since it opened. */
export interface RelayStats {
  /** Broadcasts handed to the broker for the other instances. */
  readonly published: number;
  /** Broadcasts received from other instances. */
  readonly received: number;
  /**
   * Broadcasts that did not reach the other instances: the broker was unreachable, did
   * not take them as fast as they came, or failed them. One the broker has not answered
   * (stalled) counts once its command fails, not while it waits, and not at all when the
   * broker takes it late. Local subscribers got them all.
   */
  readonly lost: number;
  /** Times the connection to the broker was lost. */
  readonly disconnects: number;
  /**
   * Bytes handed to the broker that it has not taken yet (broadcasts, history, presence):
   * at most the relay's `maxPendingBytes`.
   */
  readonly pendingBytes?: number;
}
