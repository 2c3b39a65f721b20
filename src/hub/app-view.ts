import type { AppView, Connection } from "../context.ts";
import type { PresenceCount } from "../presence/presence-registry.ts";
import { checkedId, closeOf } from "./disconnect.ts";
import type { Hub } from "./hub.ts";

/**
 * The app as a handler sees it (`ctx.app`): the connections and subscribers of the place
 * that runs it (a process, a Durable Object), counts across instances, and presence. One
 * per hub, made when a handler first asks.
 */
export function appViewOf(hub: Hub): AppView<object> {
  let view = views.get(hub);
  if (!view) {
    view = {
      get connections(): ReadonlySet<Connection<object>> {
        return hub.connections;
      },
      subscriberCount: (channel) => hub.subscriberCount(channel),
      countSubscribers: (channel) => hub.countSubscribers(channel),
      presence: (channel) => presenceOf(hub, channel),
      presenceCount: async (channel): Promise<PresenceCount> => hub.presence.count(channel),
      history: (channel, options) => historyOf(hub, channel, options?.last),
      disconnectUser: async (userId, options) =>
        hub.disconnect({ user: checkedId(userId) }, closeOf(options)),
      disconnectConnection: async (id, options) =>
        hub.disconnect({ connection: checkedId(id) }, closeOf(options)),
    };
    views.set(hub, view);
  }
  return view;
}

const views = new WeakMap<Hub, AppView<object>>();

/** The members of a channel with presence: here, or on every instance with a shared store. */
export async function presenceOf(
  hub: Hub,
  channel: string,
): Promise<{ user: string; info: unknown }[]> {
  const { json } = await hub.presence.members(channel, Number.MAX_SAFE_INTEGER);
  return JSON.parse(json) as { user: string; info: unknown }[];
}

/** A broadcast kept in a channel's history, as `ctx.app.history` gives it. */
export interface KeptBroadcast {
  readonly data: unknown;
  readonly offset: number;
  readonly epoch: string;
}

/**
 * The last broadcasts kept of a channel with history (`last`, default and at most its
 * history's `size`), oldest first; empty for a channel without history, and where this
 * place keeps none (the Worker in front of Durable Objects, whose objects keep it).
 */
export async function historyOf(
  hub: Hub,
  channel: string,
  last = Number.MAX_SAFE_INTEGER,
): Promise<KeptBroadcast[]> {
  const latest = await hub.history?.latest(channel, Math.max(0, Math.floor(last)));
  if (!latest) return [];
  return latest.frames.map((frame) => {
    const { data, offset, epoch } = JSON.parse(frame) as KeptBroadcast;
    return { data, offset, epoch };
  });
}
