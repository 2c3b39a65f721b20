// Presence shared by every instance over Redis: members and their connection counts in
// hashes per channel, each instance's own contributions in a hash of its own, and a
// heartbeat per instance, so that the members of an instance that died leave within a
// bounded time (four heartbeats: silent for three, found at the next sweep).
import type { Redis } from "ioredis";
import { MemberListing, utf8ByteLength } from "../src/adapter.ts";
import type { PresenceCount, SharedPresenceStore } from "../src/index.ts";

/** How often an instance says it is alive, and looks for instances that are not: default. */
export const HEARTBEAT_MS = 5000;

// KEYS: members, counts, this instance's contributions, alive, Redis channel.
// ARGV: member, info, field, now, message, instance.
const JOIN = `
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
local n = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[6])
if n == 1 then redis.call('PUBLISH', KEYS[5], ARGV[5]) end
return n
`;

// KEYS: members, counts, this instance's contributions, Redis channel.
// ARGV: member, field, message.
const LEAVE = `
local c = redis.call('HINCRBY', KEYS[3], ARGV[2], -1)
if c <= 0 then redis.call('HDEL', KEYS[3], ARGV[2]) end
local n = redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
if n <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[1], ARGV[1])
  if n == 0 then redis.call('PUBLISH', KEYS[4], ARGV[3]) end
end
return n
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

// KEYS: alive. ARGV: now, deadline, prefix, the mark, this instance.
// Counts out the contributions of every instance silent since the deadline.
const SWEEP = `
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[5])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local prefix = ARGV[3]
for _, instance in ipairs(dead) do
  local key = prefix .. 'presence-conns:' .. instance
  local conns = redis.call('HGETALL', key)
  for i = 1, #conns, 2 do
    local field = conns[i]
    local colon = string.find(field, ':', 1, true)
    local length = tonumber(string.sub(field, 1, colon - 1))
    local channel = string.sub(field, colon + 1, colon + length)
    local member = string.sub(field, colon + length + 1)
    local counts = prefix .. 'presence-count:' .. channel
    local n = redis.call('HINCRBY', counts, member, -tonumber(conns[i + 1]))
    if n <= 0 then
      redis.call('HDEL', counts, member)
      redis.call('HDEL', prefix .. 'presence:' .. channel, member)
      redis.call('PUBLISH', prefix .. channel, ARGV[4] .. '%{"type":"leave","channel":' ..
        cjson.encode(channel) .. ',"user":' .. cjson.encode(member) .. '}')
    end
  end
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], instance)
end
return #dead
`;

interface PresenceCommands {
  socketapiPresenceJoin(...args: string[]): Promise<number>;
  socketapiPresenceLeave(...args: string[]): Promise<number>;
  socketapiPresenceMembers(...args: (string | number)[]): Promise<(string | number)[]>;
  socketapiPresenceSweep(...args: (string | number)[]): Promise<number>;
  socketapiPresenceCount(key: string): Promise<[number, number]>;
}

/**
 * The Redis relay's presence: members counted across every instance, joins and leaves
 * published once for all of them, and the members of an instance that stops answering
 * counted out by the others within four heartbeats.
 */
export class RedisPresence implements SharedPresenceStore {
  readonly #connection: () => Redis | undefined;
  readonly #prefix: string;
  readonly #instance: string;
  /** What a message published to every instance starts with. */
  readonly #mark: string;
  readonly #defined = new WeakSet<Redis>();
  readonly #heartbeat: number;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    connection: () => Redis | undefined,
    prefix: string,
    instance: string,
    mark: string,
    heartbeat = HEARTBEAT_MS,
  ) {
    this.#connection = connection;
    this.#prefix = prefix;
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
    this.#beat();
    const p = this.#prefix;
    await redis.socketapiPresenceJoin(
      `${p}presence:${channel}`,
      `${p}presence-count:${channel}`,
      `${p}presence-conns:${this.#instance}`,
      `${p}presence-alive`,
      p + channel,
      member,
      info,
      field(channel, member),
      String(Date.now()),
      `${this.#mark}#${JSON.stringify({ except })}\n%${frame}`,
      this.#instance,
    );
  }

  async leave(channel: string, member: string, frame: string): Promise<void> {
    const redis = this.#commands();
    const p = this.#prefix;
    await redis.socketapiPresenceLeave(
      `${p}presence:${channel}`,
      `${p}presence-count:${channel}`,
      `${p}presence-conns:${this.#instance}`,
      p + channel,
      member,
      field(channel, member),
      `${this.#mark}%${frame}`,
    );
  }

  async members(
    channel: string,
    limit: number,
    maxBytes = Number.MAX_SAFE_INTEGER,
  ): Promise<{ json: string; count: number }> {
    const redis = this.#commands();
    const [count, ...pairs] = await redis.socketapiPresenceMembers(
      `${this.#prefix}presence:${channel}`,
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
      `${this.#prefix}presence-count:${channel}`,
    );
    return { members: Number(members), connections: Number(connections) };
  }

  /** Says this instance is alive, and counts out the members of those that are not. */
  async sweep(now = Date.now()): Promise<number> {
    const redis = this.#commands();
    return redis.socketapiPresenceSweep(
      `${this.#prefix}presence-alive`,
      now,
      now - this.#heartbeat * 3,
      this.#prefix,
      this.#mark,
      this.#instance,
    );
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

  #commands(): Redis & PresenceCommands {
    const redis = this.#connection();
    if (!redis) throw new Error("socketapi/redis: the relay is not open.");
    if (!this.#defined.has(redis)) {
      redis.defineCommand("socketapiPresenceJoin", { numberOfKeys: 5, lua: JOIN });
      redis.defineCommand("socketapiPresenceLeave", { numberOfKeys: 4, lua: LEAVE });
      redis.defineCommand("socketapiPresenceMembers", { numberOfKeys: 1, lua: MEMBERS });
      redis.defineCommand("socketapiPresenceSweep", { numberOfKeys: 1, lua: SWEEP });
      redis.defineCommand("socketapiPresenceCount", { numberOfKeys: 1, lua: COUNT });
      this.#defined.add(redis);
    }
    return redis as Redis & PresenceCommands;
  }
}

/** An instance's contribution's field: the channel's length in bytes, `:`, the channel, the member. */
function field(channel: string, member: string): string {
  return `${utf8ByteLength(channel)}:${channel}${member}`;
}
