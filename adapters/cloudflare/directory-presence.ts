// Presence for a Worker's objects: with a shard function, each channel's members are added
// up by an object of their own (presence-roster.ts), which each shard tells its share as it
// changes; without one, the single object knows them all, and the Worker asks it.
import { MemberListing, PRESENCE_EVENT_MARK, targetedFrame } from "../../src/adapter.ts";
import type { PresenceCount, SharedPresenceStore } from "../../src/index.ts";
import type { ObjectDirectory } from "./directory.ts";
import { DEFAULT_SHARD } from "./options.ts";
import { type PresenceShare, rosterName } from "./presence-roster.ts";

/** The object a store serves: its shard, and how a presence event reaches its listeners. */
export interface PresencePlace {
  shard(): string | undefined;
  deliverHere(channel: string, text: string): void;
}

/**
 * The presence store of a Worker's objects (and of the Worker, which holds no connections
 * and only asks). A shard's updates of one member reach the roster in order.
 */
export class DirectoryPresence implements SharedPresenceStore {
  readonly #directory: ObjectDirectory;
  readonly #place: PresencePlace | undefined;
  /** Per channel and member, the last update on its way to the roster. */
  readonly #updates = new Map<string, Promise<unknown>>();

  constructor(directory: ObjectDirectory, place?: PresencePlace) {
    this.#directory = directory;
    this.#place = place;
  }

  join(
    channel: string,
    member: string,
    info: string,
    frame: string,
    except: string,
    here: number,
  ): Promise<void> {
    return this.#update(channel, member, info, here, frame, except);
  }

  leave(channel: string, member: string, frame: string, here: number): Promise<void> {
    return this.#update(channel, member, "", here, frame, "");
  }

  async members(
    channel: string,
    limit: number,
    maxBytes = Number.POSITIVE_INFINITY,
  ): Promise<{ json: string; count: number }> {
    if (this.#directory.sharded) {
      return this.#directory.stub(rosterName(channel)).presenceMembers(channel, limit, maxBytes);
    }
    const share = await this.#directory.stub(DEFAULT_SHARD).presenceHere(channel);
    const listing = new MemberListing(limit, maxBytes);
    for (const [member, info] of share) if (!listing.add(member, info)) break;
    return { json: listing.json, count: share.length };
  }

  async count(channel: string): Promise<PresenceCount> {
    if (this.#directory.sharded) {
      return this.#directory.stub(rosterName(channel)).presenceCount(channel);
    }
    const share: PresenceShare = await this.#directory.stub(DEFAULT_SHARD).presenceHere(channel);
    return { members: share.length, connections: share.reduce((sum, [, , n]) => sum + n, 0) };
  }

  /** Tells the roster this shard's share of `member`; delivers the event here if it made one. */
  #update(
    channel: string,
    member: string,
    info: string,
    here: number,
    frame: string,
    except: string,
  ): Promise<void> {
    const shard = this.#place?.shard();
    if (shard === undefined) return Promise.resolve();
    const key = `${channel}\n${member}`;
    const previous = this.#updates.get(key) ?? Promise.resolve();
    const update = previous.then(async () => {
      const changed = await this.#directory
        .stub(rosterName(channel))
        .presenceUpdate({ channel, shard, member, info, connections: here, frame, except });
      if (!changed) return;
      const text = PRESENCE_EVENT_MARK + frame;
      this.#place?.deliverHere(channel, except ? targetedFrame({ except }, text) : text);
    });
    // The chain goes on after a failed update; the caller sees the failure.
    const settled = update.catch(() => {});
    this.#updates.set(key, settled);
    void settled.then(() => {
      if (this.#updates.get(key) === settled) this.#updates.delete(key);
    });
    return update;
  }
}
