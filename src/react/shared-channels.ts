// The channels the components under one provider listen to: one subscription of the
// client per channel however many components listen (counted), let go a moment after the
// last one leaves, so that StrictMode's mount, unmount and mount again (and fast refresh)
// sends no unsubscribe and no second subscribe.
import type { SocketAPIClient } from "../client/client.ts";
import type { Unsubscribe } from "../client/client-options.ts";
import type { DataInfo, Member } from "../client/client-types.ts";

/** What one component hears of a channel. */
export interface ChannelListener {
  data?: ((data: unknown, info: DataInfo) => void) | undefined;
  reset?: (() => void) | undefined;
  members?: ((members: Member[], count: number) => void) | undefined;
  join?: ((member: Member) => void) | undefined;
  leave?: ((member: { readonly user: string }) => void) | undefined;
}

/** One channel's subscription, shared. */
interface Shared {
  readonly listeners: Set<ChannelListener>;
  readonly stops: Unsubscribe[];
  presence: boolean;
  ready: Promise<void>;
  release: ReturnType<typeof setTimeout> | undefined;
  /** The last members list and what came since, for a listener that comes late. */
  members: Map<string, Member> | undefined;
}

/** How long a channel nobody listens to stays subscribed (ms): a remount within it reuses it. */
export const RELEASE_DELAY = 50;

/** The shared subscriptions of one client. */
export class SharedChannels {
  readonly #client: SocketAPIClient<unknown>;
  readonly #shared = new Map<string, Shared>();

  constructor(client: SocketAPIClient<unknown>) {
    this.#client = client;
  }

  /** How many channels it holds subscribed (tests read it). */
  get size(): number {
    return this.#shared.size;
  }

  /**
   * Listens to `name` (subscribed with `params` by its first listener); `presence` asks for
   * members. Returns when the subscription is confirmed, and how to stop listening.
   */
  listen(
    name: string,
    params: Record<string, unknown> | undefined,
    listener: ChannelListener,
    presence: boolean,
  ): { ready: Promise<void>; stop: () => void } {
    let shared = this.#shared.get(name);
    if (!shared) {
      shared = this.#subscribe(name, params, presence);
      this.#shared.set(name, shared);
    } else if (presence && !shared.presence) {
      this.#askPresence(name, shared);
    }
    if (shared.release !== undefined) {
      clearTimeout(shared.release);
      shared.release = undefined;
    }
    shared.listeners.add(listener);
    // A late listener of presence gets the members known so far.
    if (presence && shared.members) {
      const members = [...shared.members.values()];
      listener.members?.(members, members.length);
    }
    const held = shared;
    let stopped = false;
    return {
      ready: held.ready,
      stop: () => {
        if (stopped) return;
        stopped = true;
        held.listeners.delete(listener);
        if (held.listeners.size > 0 || held.release !== undefined) return;
        held.release = setTimeout(() => {
          held.release = undefined;
          if (held.listeners.size > 0 || this.#shared.get(name) !== held) return;
          this.#shared.delete(name);
          for (const stop of held.stops) void stop().catch(() => {});
        }, RELEASE_DELAY);
      },
    };
  }

  #subscribe(name: string, params: Record<string, unknown> | undefined, presence: boolean): Shared {
    const shared: Shared = {
      listeners: new Set(),
      stops: [],
      presence,
      ready: Promise.resolve(),
      release: undefined,
      members: undefined,
    };
    const handlers = {
      data: (data: unknown, info: DataInfo) => {
        for (const listener of shared.listeners) listener.data?.(data, info);
      },
      reset: () => {
        for (const listener of shared.listeners) listener.reset?.();
      },
      ...(presence ? this.#presenceHandlers(shared) : {}),
    };
    const subscribe = this.#untypedSubscribe();
    const stop =
      params === undefined ? subscribe(name, handlers) : subscribe(name, params, handlers);
    shared.stops.push(stop);
    shared.ready = stop.ready.catch(() => {});
    return shared;
  }

  #askPresence(name: string, shared: Shared): void {
    shared.presence = true;
    const subscribe = this.#untypedSubscribe();
    shared.stops.push(subscribe(name, this.#presenceHandlers(shared)));
  }

  /** The client's `subscribe`, untyped: the hooks typed the names and parameters already. */
  #untypedSubscribe(): (name: string, ...args: unknown[]) => Unsubscribe {
    const client = this.#client as unknown as {
      subscribe(name: string, ...args: unknown[]): Unsubscribe;
    };
    return (name, ...args) => client.subscribe(name, ...args);
  }

  #presenceHandlers(shared: Shared) {
    return {
      members: (members: Member[], count: number) => {
        shared.members = new Map(members.map((member) => [member.user, member]));
        for (const listener of shared.listeners) listener.members?.(members, count);
      },
      join: (member: Member) => {
        shared.members?.set(member.user, member);
        for (const listener of shared.listeners) listener.join?.(member);
      },
      leave: (member: { readonly user: string }) => {
        shared.members?.delete(member.user);
        for (const listener of shared.listeners) listener.leave?.(member);
      },
    };
  }
}
