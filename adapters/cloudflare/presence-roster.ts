// The members of one channel with presence across the shards of a Worker, kept by an object
// of its own (`__socketapi_presence__:` and the channel) in its SQLite storage: each shard's
// share as the shard last said it, the members it adds up to, and the joins and leaves that
// follow, carried to the shards over RPC.
import {
  joinFrame,
  leaveFrame,
  MemberListing,
  PRESENCE_EVENT_MARK,
  targetedFrame,
} from "../../src/adapter.ts";
import type { PresenceCount } from "../../src/index.ts";
import type { ObjectDirectory } from "./directory.ts";

/** What a shard holds of a channel's members: who, the info it shows (JSON), connections. */
export type PresenceShare = [member: string, info: string, connections: number][];

/**
 * A shard's share of one member, as it tells the roster: `connections` of `member`'s
 * connections are subscribed to `channel` there, showing `info`; `frame` is the join or
 * leave the change would make, `except` the connection a join is not sent to.
 */
export interface ShareUpdate {
  channel: string;
  shard: string;
  member: string;
  info: string;
  connections: number;
  frame: string;
  except: string;
}

/** The name of the object that keeps the members of `channel`. */
export function rosterName(channel: string): string {
  return `__socketapi_presence__:${channel}`;
}

/** How often, by default, a roster asks its shards what they hold. */
export const PRESENCE_CHECK_MS = 30_000;

/**
 * One channel's members across shards. A shard says how many connections of a member it
 * has after each change (not "one more"), so that saying it twice, or after a wake, counts
 * nothing twice; a member joins when its shards' sum leaves zero and leaves when it returns
 * to zero. While it has members, the roster asks each shard what it holds every
 * `checkInterval` ms (an alarm): a shard that lost its sockets without a close event (a
 * deploy, a reset) answers with nothing, and its members leave.
 */
export class PresenceRoster {
  readonly #ctx: DurableObjectState;
  readonly #directory: ObjectDirectory;
  readonly #checkInterval: number;
  #ready = false;

  constructor(ctx: DurableObjectState, directory: ObjectDirectory, checkInterval: number) {
    this.#ctx = ctx;
    this.#directory = directory;
    this.#checkInterval = checkInterval;
  }

  /**
   * A shard's new share of a member ({@link ShareUpdate}). When that makes the member join or leave, the other shards hear it (`frame`, except
   * the connection `except` for a join), and `true` tells the caller to deliver it to its
   * own listeners.
   */
  async update(update: ShareUpdate): Promise<boolean> {
    const { channel, shard, member, info, connections, frame, except } = update;
    this.#prepare(channel);
    const event = this.#set(shard, member, info, connections);
    const others = this.#shards().filter((other) => other !== shard);
    await this.#keepChecking();
    if (!event) return false;
    const text = PRESENCE_EVENT_MARK + frame;
    await this.#fanOut(
      channel,
      event === "join" && except ? targetedFrame({ except }, text) : text,
      others,
    );
    return true;
  }

  /**
   * The first members as a JSON array (at most `limit` of them, at most `maxBytes` of
   * JSON), and how many there are.
   */
  members(limit: number, maxBytes = Number.POSITIVE_INFINITY): { json: string; count: number } {
    if (!this.#exists()) return { json: "[]", count: 0 };
    const sql = this.#ctx.storage.sql;
    const listing = new MemberListing(limit, maxBytes);
    for (const row of sql.exec<{ member: string; info: string }>(
      "SELECT member, info FROM socketapi_presence_members LIMIT ?",
      limit,
    )) {
      if (!listing.add(row.member, row.info)) break;
    }
    return { json: listing.json, count: this.count().members };
  }

  /** How many members, and how many connections they have subscribed, on every shard. */
  count(): PresenceCount {
    if (!this.#exists()) return { members: 0, connections: 0 };
    const row = this.#ctx.storage.sql
      .exec<{ members: number; connections: number }>(
        "SELECT COUNT(*) AS members, COALESCE(SUM(connections), 0) AS connections " +
          "FROM socketapi_presence_members",
      )
      .one();
    return { members: row.members, connections: row.connections };
  }

  /**
   * The alarm: asks each shard what it holds and takes its answer as its share; the joins
   * and leaves that makes go to every shard. A shard that does not answer keeps its share
   * until the next check.
   */
  async check(): Promise<void> {
    if (!this.#exists()) return;
    const sql = this.#ctx.storage.sql;
    const channel = sql
      .exec<{ channel: string }>("SELECT channel FROM socketapi_presence_channel")
      .toArray()[0]?.channel;
    if (channel === undefined) return;
    const shards = this.#shards();
    const answers = await Promise.allSettled(
      shards.map((shard) => this.#directory.stub(shard).presenceHere(channel)),
    );
    const events: string[] = [];
    answers.forEach((answer, i) => {
      const shard = shards[i] as string;
      if (answer.status === "rejected") {
        this.#directory.report(answer.reason, channel);
        return;
      }
      const held = new Map(answer.value.map(([member, info, n]) => [member, { info, n }]));
      for (const { member } of sql
        .exec<{ member: string }>(
          "SELECT member FROM socketapi_presence_shares WHERE shard = ?",
          shard,
        )
        .toArray()) {
        if (!held.has(member) && this.#set(shard, member, "", 0) === "leave") {
          events.push(PRESENCE_EVENT_MARK + leaveFrame(channel, member));
        }
      }
      for (const [member, { info, n }] of held) {
        const event = this.#set(shard, member, info, n);
        if (event === "leave") events.push(PRESENCE_EVENT_MARK + leaveFrame(channel, member));
        if (event === "join") {
          events.push(PRESENCE_EVENT_MARK + joinFrame(channel, member, info));
        }
      }
    });
    // The shards with members after the check (read before an empty roster deletes itself).
    const listening = this.#shards();
    await this.#keepChecking();
    for (const event of events) await this.#fanOut(channel, event, listening);
  }

  /** Sets `shard`'s share of `member`; says whether the member joined or left. */
  #set(
    shard: string,
    member: string,
    info: string,
    connections: number,
  ): "join" | "leave" | undefined {
    const sql = this.#ctx.storage.sql;
    const before =
      sql
        .exec<{ connections: number }>(
          "SELECT connections FROM socketapi_presence_shares WHERE shard = ? AND member = ?",
          shard,
          member,
        )
        .toArray()[0]?.connections ?? 0;
    if (connections > 0) {
      sql.exec(
        "INSERT INTO socketapi_presence_shares (shard, member, connections) VALUES (?, ?, ?) " +
          "ON CONFLICT (shard, member) DO UPDATE SET connections = excluded.connections",
        shard,
        member,
        connections,
      );
    } else {
      sql.exec(
        "DELETE FROM socketapi_presence_shares WHERE shard = ? AND member = ?",
        shard,
        member,
      );
    }
    const total =
      sql
        .exec<{ connections: number }>(
          "SELECT connections FROM socketapi_presence_members WHERE member = ?",
          member,
        )
        .toArray()[0]?.connections ?? 0;
    const after = total - before + connections;
    if (after <= 0) {
      if (total === 0) return undefined;
      sql.exec("DELETE FROM socketapi_presence_members WHERE member = ?", member);
      return "leave";
    }
    // A shard that adds a connection shows its info: the newest connection's, as on one instance.
    if (connections > before || total === 0) {
      sql.exec(
        "INSERT INTO socketapi_presence_members (member, info, connections) VALUES (?, ?, ?) " +
          "ON CONFLICT (member) DO UPDATE SET info = excluded.info, connections = excluded.connections",
        member,
        info,
        after,
      );
    } else {
      sql.exec(
        "UPDATE socketapi_presence_members SET connections = ? WHERE member = ?",
        after,
        member,
      );
    }
    return total === 0 ? "join" : undefined;
  }

  /** Carries a presence event to these shards. */
  async #fanOut(channel: string, text: string, shards: readonly string[]): Promise<void> {
    const outcomes = await Promise.allSettled(
      shards.map((shard) => this.#directory.stub(shard).deliver(channel, text)),
    );
    for (const outcome of outcomes) {
      if (outcome.status === "rejected") this.#directory.report(outcome.reason, channel);
    }
  }

  #shards(): string[] {
    return this.#ctx.storage.sql
      .exec<{ shard: string }>("SELECT DISTINCT shard FROM socketapi_presence_shares")
      .toArray()
      .map((row) => row.shard);
  }

  /**
   * While the roster has members, an alarm is set to check its shards; with none left, it
   * keeps nothing: its storage and its alarm are deleted, so that a channel joined once
   * leaves no object behind.
   */
  async #keepChecking(): Promise<void> {
    const storage = this.#ctx.storage;
    if (this.#shards().length === 0) {
      // Storage calls close the object's input gate: no update comes in between.
      this.#ready = false;
      await storage.deleteAll();
      await storage.deleteAlarm();
      return;
    }
    if ((await storage.getAlarm()) === null)
      await storage.setAlarm(Date.now() + this.#checkInterval);
  }

  #exists(): boolean {
    if (this.#ready) return true;
    const table = this.#ctx.storage.sql
      .exec(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'socketapi_presence_members'",
      )
      .toArray();
    this.#ready = table.length > 0;
    return this.#ready;
  }

  #prepare(channel: string): void {
    if (!this.#exists()) {
      const sql = this.#ctx.storage.sql;
      sql.exec(
        "CREATE TABLE IF NOT EXISTS socketapi_presence_channel (channel TEXT PRIMARY KEY);" +
          "CREATE TABLE IF NOT EXISTS socketapi_presence_shares (shard TEXT NOT NULL, " +
          "member TEXT NOT NULL, connections INTEGER NOT NULL, PRIMARY KEY (shard, member));" +
          "CREATE TABLE IF NOT EXISTS socketapi_presence_members (member TEXT PRIMARY KEY, " +
          "info TEXT NOT NULL, connections INTEGER NOT NULL);",
      );
      this.#ready = true;
    }
    this.#ctx.storage.sql.exec(
      "INSERT OR IGNORE INTO socketapi_presence_channel (channel) VALUES (?)",
      channel,
    );
  }
}
