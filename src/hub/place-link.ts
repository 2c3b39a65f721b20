import type { ErrorInfo } from "../context.ts";
import type { Relay } from "./relay.ts";
import type { SubscriberIndex } from "./subscriber-index.ts";

/**
 * What a hub lends the parts that serve one feature of its channels (presence, history):
 * its subscribers, its relay, and its ways to report and count. The hub makes one, and
 * makes a part only when the app declares its feature.
 */
export interface PlaceLink {
  /** Who is subscribed here. */
  readonly index: SubscriberIndex;
  /** The relay to other places, if any (read each time: an adapter may give one later). */
  readonly relay: Relay | undefined;
  /** Opens the relay (once); resolves when it is ready. */
  start(): Promise<void>;
  /** The relay could not open: told once; local delivery goes on without it. */
  openFailed(error: unknown): void;
  /** Tells the app's error hook (what a relay told it already is not told again). */
  report(error: unknown, info: ErrorInfo): void;
  /** Delivers to the subscribers of `channel` here but the connection with id `except`. */
  deliverExcept(channel: string, frame: string, except: string): number;
  /** Leaves `channel` on the relay (failures reported). */
  leaveRelay(channel: string): void;
  /** Counts how many subscribers a delivery reached here, for the app's metrics. */
  delivered(count: number): void;
}
