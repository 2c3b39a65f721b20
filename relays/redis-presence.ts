// Presence shared by every instance over Redis: members and their connection counts in
// hashes per channel, each instance's own contributions to a channel in a hash beside
// them, and a heartbeat per instance, so that the members of an instance that died leave within a
// bounded time (four heartbeats: silent for three, found at the next sweep).
import { MemberListing } from "../src/adapter.ts";
import type { PresenceCount, SharedPresenceStore } from "../src/index.ts";
import type { RedisClient } from "./redis-client.ts";
import type { RedisNames } from "./redis-names.ts";

/** How often an instance says it is alive, and looks for instances that are not: default. */
export const HEARTBEAT_MS = 5000;

// KEYS: members, counts, this instance's contributions to the channel, the channel's
// topic. ARGV: member, info, message, publish command.
const JOIN = `
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
local n = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if n == 1 then redis.call(ARGV[4], KEYS[4], ARGV[3]) end
return n
`;

// KEYS: members, counts, this instance's contributions to the channel, the channel's
// topic. ARGV: member, message, publish command. How many members this instance still
// contributes to the channel.
const LEAVE = `
local c = redis.call('HINCRBY', KEYS[3], ARGV[1], -1)
if c <= 0 then redis.call('HDEL', KEYS[3], ARGV[1]) end
local n = redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
if n <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[1], ARGV[1])
  if n == 0 then redis.call(ARGV[3], KEYS[4], ARGV[2]) end
end
return redis.call('HLEN', KEYS[3])
`;

// KEYS: members, counts, a silent instance's contributions to the channel, the channel's
// topic. ARGV: what a leave's message starts with, the channel (JSON), publish command.
// Counts its members out; running it again does nothing.
const COUNT_OUT = `
local conns = redis.call('HGETALL', KEYS[3])
for i = 1, #conns, 2 do
  local member = conns[i]
  local n = redis.call('HINCRBY', KEYS[2], member, -tonumber(conns[i + 1]))
  if n <= 0 then
    redis.call('HDEL', KEYS[2], member)
    redis.call('HDEL', KEYS[1], member)
    redis.call(ARGV[3], KEYS[4], ARGV[1] .. '%{"type":"leave","channel":' .. ARGV[2] ..
      ',"user":' .. cjson.encode(member) .. '}')
  end
end
redis.call('DEL', KEYS[3])
return #conns / 2
`;

// KEYS: members. ARGV: limit, the most bytes of members and info (UTF-8; the listing's JSON
// is checked again where it is written). The count, then member, info, member, info, ...:
// read a page at a time, never the whole hash.
const MEMBERS = `
local out = { redis.call('HLEN', KEYS[1]) }
local limit = tonumber(ARGV[1])
local budget = tonumber(ARGV[2])
local cursor = '0'
local listed = 0
repeat
  local page = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', 100)
  cursor = page[1]
  local pairs = page[2]
  for i = 1, #pairs, 2 do
    if listed >= limit then return out end
    budget = budget - string.len(pairs[i]) - string.len(pairs[i + 1])
    if budget < 0 then return out end
    out[#out + 1] = pairs[i]
    out[#out + 1] = pairs[i + 1]
    listed = listed + 1
  end
until cursor == '0'
return out
`;

// KEYS: counts. How many members, and the sum of their connections.
const COUNT = `
local counts = redis.call('HVALS', KEYS[1])
local connections = 0
for _, n in ipairs(counts) do connections = connections + tonumber(n) end
return { #counts, connections }
`;

/** How long one instance may take to count out a silent one before another may. */
const CLAIM_MS = 30_000;

/** The most silent instances one sweep counts out (the next sweep takes the rest). */
const SWEEP_BATCH = 10;

/** The scripts, as commands of the relay's connection. */
interface PresenceCommands {
  socketapiPresenceJoin(...args: string[]): Promise<number>;
  socketapiPresenceLeave(...args: string[]): Promise<number>;
  socketapiPresenceCountOut(...args: string[]): Promise<number>;
  socketapiPresenceMembers(...args: (string | number)[]): Promise<(string | number)[]>;
  socketapiPresenceCount(key: string): Promise<[number, number]>;
}

/**
 * The Redis relay's presence: members counted across every instance, joins and leaves
 * published once for all of them, and the members of an instance that stops answering
 * counted out by the others within four heartbeats.
 *
 * Each instance's contributions to a channel are a hash in the channel's slot, and the
 * channels it contributes to a set of its own: a Redis Cluster runs every script in one
 * slot. An instance silent for three heartbeats is claimed by one of the others, which
 * counts its members out channel by channel (again, harmlessly, if it dies doing so).
 */
export class RedisPresence implements SharedPresenceStore {
  readonly #connection: () => RedisClient | undefined;
  readonly #names: RedisNames;
  readonly #instance: string;
  /** What a message published to every instance starts with. */
  readonly #mark: string;
  readonly #defined = new WeakSet<RedisClient>();
  readonly #heartbeat: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** The channels this instance's set names in Redis, as far as it knows. */
  readonly #listed = new Set<string>();
  /** Joins made per channel, so that a leave knows whether one came after it. */
  readonly #joins = new Map<string, number>();

  constructor(
    connection: () => RedisClient | undefined,
    names: RedisNames,
    instance: string,
    mark: string,
    heartbeat = HEARTBEAT_MS,
  ) {
    this.#connection = connection;
    this.#names = names;
    this.#instance = instance;
    this.#mark = mark;
    this.#heartbeat = heartbeat;
  }

  async join(
    channel: string,
    member: string,
    info: string,
    frame: string,
    except: string,
  ): Promise<void> {
    const redis = this.#commands();
    const names = this.#names;
    this.#joins.set(channel, (this.#joins.get(channel) ?? 0) + 1);
    if (!this.#listed.has(channel)) {
      // Listed before it is counted: whoever counts this instance out finds the channel.
      this.#listed.add(channel);
      try {
        await Promise.all([
          redis.sadd(names.instanceChannels(this.#instance), channel),
          redis.zadd(names.alive, Date.now(), this.#instance),
        ]);
      } catch (error) {
        this.#listed.delete(channel);
        throw error;
      }
    }
    this.#beat();
    await redis.socketapiPresenceJoin(
      names.key("presence", channel),
      names.key("presence-count", channel),
      names.contributions(channel, this.#instance),
      names.topic(channel),
      member,
      info,
      `${this.#mark}#${JSON.stringify({ except })}\n%${frame}`,
      names.publishCommand,
    );
  }

  async leave(channel: string, member: string, frame: string): Promise<void> {
    const redis = this.#commands();
    const names = this.#names;
    const joins = this.#joins.get(channel);
    const left = await redis.socketapiPresenceLeave(
      names.key("presence", channel),
      names.key("presence-count", channel),
      names.contributions(channel, this.#instance),
      names.topic(channel),
      member,
      `${this.#mark}%${frame}`,
      names.publishCommand,
    );
    // Nothing of this instance's is left on the channel, and no join came meanwhile (it
    // may have been counted before this leave): the channel leaves its set. The set's
    // commands go in order on one connection, so a later join lists it again after this.
    if (Number(left) > 0 || this.#joins.get(channel) !== joins) return;
    this.#joins.delete(channel);
    this.#listed.delete(channel);
    await redis.srem(names.instanceChannels(this.#instance), channel);
  }

  async members(
    channel: string,
    limit: number,
    maxBytes = Number.MAX_SAFE_INTEGER,
  ): Promise<{ json: string; count: number }> {
    const redis = this.#commands();
    const [count, ...pairs] = await redis.socketapiPresenceMembers(
      this.#names.key("presence", channel),
      limit,
      // UTF-8 takes at most three bytes per UTF-16 unit of the JSON written from it.
      Math.min(Number.MAX_SAFE_INTEGER, maxBytes * 3),
    );
    const listing = new MemberListing(limit, maxBytes);
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      if (!listing.add(String(pairs[i]), String(pairs[i + 1]))) break;
    }
    return { json: listing.json, count: Number(count) };
  }

  async count(channel: string): Promise<PresenceCount> {
    const [members, connections] = await this.#commands().socketapiPresenceCount(
      this.#names.key("presence-count", channel),
    );
    return { members: Number(members), connections: Number(connections) };
  }

  /**
   * Says this instance is alive, and counts out the members of those silent for three
   * heartbeats (at most {@link SWEEP_BATCH} of them per sweep); how many it counted out.
   */
  async sweep(now = Date.now()): Promise<number> {
    const redis = this.#commands();
    const names = this.#names;
    await redis.zadd(names.alive, now, this.#instance);
    const silent = await redis.zrangebyscore(
      names.alive,
      "-inf",
      now - this.#heartbeat * 3,
      "LIMIT",
      0,
      SWEEP_BATCH,
    );
    let counted = 0;
    for (const instance of silent) {
      if (instance === this.#instance) continue;
      // One instance counts it out; another may after CLAIM_MS, if this one died meanwhile.
      const claimed = await redis.set(names.claim(instance), this.#instance, "PX", CLAIM_MS, "NX");
      if (claimed !== "OK") continue;
      const set = names.instanceChannels(instance);
      let cursor = "0";
      do {
        const [next, channels] = await redis.sscan(set, cursor, "COUNT", 100);
        cursor = next;
        for (const channel of channels) {
          await redis.socketapiPresenceCountOut(
            names.key("presence", channel),
            names.key("presence-count", channel),
            names.contributions(channel, instance),
            names.topic(channel),
            this.#mark,
            JSON.stringify(channel),
            names.publishCommand,
          );
        }
      } while (cursor !== "0");
      await redis.del(set);
      await redis.zrem(names.alive, instance);
      counted++;
    }
    return counted;
  }

  /** Stops the heartbeat. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Starts the heartbeat with the first member (an instance without any needs none). */
  #beat(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      this.sweep().catch(() => {
        // The broker is away: the relay reports the outage; the next beat tries again.
      });
    }, this.#heartbeat);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  #commands(): RedisClient & PresenceCommands {
    const redis = this.#connection();
    if (!redis) throw new Error("socketapi/redis: the relay is not open.");
    if (!this.#defined.has(redis)) {
      redis.defineCommand("socketapiPresenceJoin", { numberOfKeys: 4, lua: JOIN });
      redis.defineCommand("socketapiPresenceLeave", { numberOfKeys: 4, lua: LEAVE });
      redis.defineCommand("socketapiPresenceCountOut", { numberOfKeys: 4, lua: COUNT_OUT });
      redis.defineCommand("socketapiPresenceMembers", { numberOfKeys: 1, lua: MEMBERS });
      redis.defineCommand("socketapiPresenceCount", { numberOfKeys: 1, lua: COUNT });
      this.#defined.add(redis);
    }
    return redis as RedisClient & PresenceCommands;
  }
}
