/**
 * Who is here, per channel with presence: each member (a user, or a connection without
 * one) with the info it shows and how many of its connections are subscribed. A person on
 * three tabs is one member: it joins with its first connection and leaves with its last.
 */
export class PresenceRegistry {
  readonly #channels = new Map<string, Map<string, Member>>();

  /**
   * Counts a connection of `user` in; `true` when the user was not a member before. A
   * member leaving (its last connection gone less than the leave delay ago) is back, as it
   * was: its new connection takes the place of the one that left.
   */
  join(channel: string, user: string, info: string): boolean {
    let members = this.#channels.get(channel);
    if (!members) {
      members = new Map();
      this.#channels.set(channel, members);
    }
    const member = members.get(user);
    if (member) {
      if (member.leaving) member.leaving = false;
      else member.connections++;
      // The newest connection's info is what the others see from now on.
      member.info = info;
      return false;
    }
    members.set(user, { info, connections: 1, leaving: false });
    return true;
  }

  /**
   * Counts a connection of `user` out; `true` when it was the user's last one. With
   * `hold`, a last connection leaves the member in place, leaving, until {@link expire}:
   * it is still listed and counted, with that connection.
   */
  leave(channel: string, user: string, hold = false): boolean {
    const members = this.#channels.get(channel);
    const member = members?.get(user);
    if (!members || !member || member.leaving) return false;
    if (member.connections > 1) {
      member.connections--;
      return false;
    }
    if (hold) member.leaving = true;
    else this.#remove(members, channel, user);
    return true;
  }

  /** A member held by `leave` goes, unless it came back meanwhile; `true` when it went. */
  expire(channel: string, user: string): boolean {
    const members = this.#channels.get(channel);
    if (!members?.get(user)?.leaving) return false;
    this.#remove(members, channel, user);
    return true;
  }

  #remove(members: Map<string, Member>, channel: string, user: string): void {
    members.delete(user);
    if (members.size === 0) this.#channels.delete(channel);
  }

  /** Each channel with members here, and how many (for the dashboard). */
  *sizes(): IterableIterator<[channel: string, members: number]> {
    for (const [channel, members] of this.#channels) yield [channel, members.size];
  }

  /** How many members `channel` has. */
  count(channel: string): number {
    return this.#channels.get(channel)?.size ?? 0;
  }

  /** How many connections its members have subscribed. */
  connections(channel: string): number {
    let connections = 0;
    for (const member of this.#channels.get(channel)?.values() ?? []) {
      connections += member.connections;
    }
    return connections;
  }

  /** How many of `member`'s connections here are subscribed to `channel`. */
  connectionsOf(channel: string, member: string): number {
    return this.#channels.get(channel)?.get(member)?.connections ?? 0;
  }

  /** Every member of `channel` here: who, the info it shows (JSON), how many connections. */
  entries(channel: string): [member: string, info: string, connections: number][] {
    const entries: [string, string, number][] = [];
    for (const [user, { info, connections }] of this.#channels.get(channel) ?? []) {
      entries.push([user, info, connections]);
    }
    return entries;
  }

  /**
   * The first members as a JSON array, `[{"user":U,"info":I}, ...]`: at most `limit` of
   * them, and at most `maxBytes` of JSON (UTF-16 units).
   */
  membersJson(channel: string, limit: number, maxBytes = Number.POSITIVE_INFINITY): string {
    const members = this.#channels.get(channel);
    if (!members) return "[]";
    const listing = new MemberListing(limit, maxBytes);
    for (const [user, { info }] of members) if (!listing.add(user, info)) break;
    return listing.json;
  }
}

/**
 * A listing of members being written, within a count and a size: what `subscribed`
 * carries, however many members there are and whatever their ids and info.
 */
export class MemberListing {
  readonly #parts: string[] = [];
  readonly #limit: number;
  readonly #maxBytes: number;
  #bytes = 2;

  constructor(limit: number, maxBytes: number) {
    this.#limit = limit;
    this.#maxBytes = maxBytes;
  }

  /** Adds a member if it fits; `false` once the listing is full (nothing more fits). */
  add(user: string, info: string): boolean {
    if (this.#parts.length >= this.#limit) return false;
    const part = memberJson(user, info);
    const bytes = this.#bytes + part.length + (this.#parts.length > 0 ? 1 : 0);
    if (bytes > this.#maxBytes) return false;
    this.#bytes = bytes;
    this.#parts.push(part);
    return true;
  }

  get json(): string {
    return `[${this.#parts.join(",")}]`;
  }
}

/** A member: the info it shows (as JSON), and how many of its connections are subscribed. */
interface Member {
  info: string;
  connections: number;
  /** Its last connection left: it goes when the leave delay is over, unless it comes back. */
  leaving: boolean;
}

/** The most bytes a member's info may take, as JSON. */
export const MAX_PRESENCE_INFO_BYTES = 1024;

/** The longest user id (or connection id) a member may have, in characters. */
export const MAX_PRESENCE_USER_LENGTH = 256;

/** The most members a `subscribed` frame lists (`count` says how many there are). */
export const MAX_LISTED_MEMBERS = 1000;

/** The most bytes of members a `subscribed` frame lists, as JSON. */
export const MAX_LISTED_BYTES = 64 * 1024;

/** How long a member whose last connection left stays, by default, before its leave. */
export const DEFAULT_PRESENCE_LEAVE_DELAY_MS = 1000;

/** A member as listed in `subscribed` and by `app.presence`: `{"user":U,"info":I}`. */
export function memberJson(user: string, info: string): string {
  return `{"user":${JSON.stringify(user)},"info":${info}}`;
}

/** `{"type":"join","channel":C,"user":U,"info":I}` */
export function joinFrame(channel: string, user: string, info: string): string {
  return `{"type":"join","channel":${JSON.stringify(channel)},"user":${JSON.stringify(user)},"info":${info}}`;
}

/** `{"type":"leave","channel":C,"user":U}` */
export function leaveFrame(channel: string, user: string): string {
  return `{"type":"leave","channel":${JSON.stringify(channel)},"user":${JSON.stringify(user)}}`;
}

/**
 * Presence every instance shares, where the relay's broker keeps it (Redis): members are
 * counted cluster-wide, and a join or leave event is published to every instance with
 * subscribers of the channel (this one included, through its relay), as `%` and the frame,
 * after `#{"except":ID}` and a newline when the joining connection must not hear it.
 * An instance that dies without a word loses its members within a bounded time.
 * `here` is how many connections of the member this instance has after the change, for a
 * store that records each instance's share as it is rather than counting calls.
 */
export interface SharedPresenceStore {
  /** Counts a connection of `member` in; publishes `frame` (its join) when it is the first. */
  join(
    channel: string,
    member: string,
    info: string,
    frame: string,
    except: string,
    here: number,
  ): Promise<void>;
  /** Counts a connection of `member` out; publishes `frame` (its leave) when it was the last. */
  leave(channel: string, member: string, frame: string, here: number): Promise<void>;
  /**
   * The first members as a JSON array (at most `limit` of them, at most `maxBytes` of
   * JSON), and how many there are.
   */
  members(
    channel: string,
    limit: number,
    maxBytes?: number,
  ): Promise<{ json: string; count: number }>;
  /** How many members, and how many connections they have subscribed, on every instance. */
  count(channel: string): Promise<PresenceCount>;
}

/** How many members a channel with presence has, and how many connections they subscribed. */
export interface PresenceCount {
  readonly members: number;
  readonly connections: number;
}

/** What a presence event starts with where it travels between instances. */
export const PRESENCE_EVENT_MARK = "%";
