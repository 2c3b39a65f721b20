// Channel history in Redis Streams, shared by every instance of an app: one stream per
// concrete channel name, stamped and published in one script so that the order of
// offsets is the order every instance receives broadcasts in.
import {
  DEFAULT_HISTORY_BYTES,
  emptyEpoch,
  emptySince,
  newEpoch,
  recoveryOf,
  recoveryOfStream,
} from "../src/adapter.ts";
import type {
  HistoryOptions,
  Latest,
  Recovery,
  SharedHistoryStore,
  StreamPosition,
} from "../src/index.ts";
import type { RedisClient } from "./redis-client.ts";
import type { RedisNames } from "./redis-names.ts";

/**
 * What a history broadcast starts with on the relay's Redis channel, where other messages
 * start with their sender's id (hex): every instance takes it, its sender included.
 */
export const HISTORY_MARK = "~".repeat(16);

// What every history script starts with: the primary it runs on, and how a stream starts
// again. Redis replicates to replicas after it answers: a replica that takes over from a
// primary (a Sentinel or cluster failover) may lack the last broadcasts the primary
// stamped and sent. The meta says which primary stamped the stream (its replication id,
// which a promoted replica changes); a stream another one stamped starts again under a new
// epoch, so that a client recovering across the failover is told it was not recovered,
// never given offsets that were stamped twice. Such a stream's `created` is 0: it adopts
// no empty position given out before it (see RECOVER).
const PRIMARY = `
local function primary()
  return string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)') or ''
end
local function restart(epoch, created, ttl, here)
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'top', 0, 'created', created, 'bytes', 0,
    'primary', here)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
`;

// KEYS: stream, meta, Redis channel. ARGV: frame, size, ttl (ms), a new epoch, what the
// published message starts with (the mark, and a target for everyone but one connection),
// the most bytes kept, the publish command. A stream whose meta expired starts again under
// a new epoch; the meta says when the stream was made, and how many bytes (UTF-8) its
// entries hold.
const PUBLISH = `${PRIMARY}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local here = primary()
local meta = redis.call('HMGET', KEYS[2], 'epoch', 'primary')
local epoch = meta[1]
if not epoch then
  epoch = ARGV[4]
  restart(epoch, now, ARGV[3], here)
elseif meta[2] ~= here then
  epoch = ARGV[4]
  restart(epoch, 0, ARGV[3], here)
end
local top = redis.call('HINCRBY', KEYS[2], 'top', 1)
local stamped = string.sub(ARGV[1], 1, -2) .. ',"offset":' .. top .. ',"epoch":"' .. epoch .. '"}'
local length = redis.call('XLEN', KEYS[1]) + 1
local bytes = tonumber(redis.call('HGET', KEYS[2], 'bytes') or '0') + string.len(stamped)
redis.call('XADD', KEYS[1], top .. '-1', 'f', stamped, 't', now)
local size = tonumber(ARGV[2])
local maxBytes = tonumber(ARGV[6])
while length > size or (bytes > maxBytes and length > 0) do
  local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  if not oldest then break end
  redis.call('XDEL', KEYS[1], oldest[1])
  length = length - 1
  bytes = bytes - string.len(oldest[2][2])
end
if bytes < 0 then bytes = 0 end
redis.call('HSET', KEYS[2], 'bytes', bytes)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call(ARGV[7], KEYS[3], ARGV[5] .. stamped)
return top
`;

// KEYS: stream, meta. ARGV: since offset (-1: none), since epoch, when the empty position
// given as since was given (-1: it is not one), ttl, size, the most UTF-16 units that may
// be sent, a new epoch. Writes nothing but a stream another primary stamped, which starts
// again: a stream nothing was broadcast on has no keys. Reads entries
// only when they may all be sent: contiguous from since, none expired, at most size of
// them, at most three bytes per unit that may be sent (UTF-8 takes one to three per unit).
// Returns epoch ('' without a stream), top, the server's time (ms), 'none', 'refused' or
// 'read', the entries read, and the epoch since is taken in.
const RECOVER = `${PRIMARY}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local meta = redis.call('HMGET', KEYS[2], 'epoch', 'top', 'created', 'primary')
if not meta[1] then return {'', 0, now, 'none', {}, ''} end
local here = primary()
if meta[4] ~= here then
  restart(ARGV[7], 0, ARGV[4], here)
  meta = {ARGV[7], 0, 0}
end
local epoch = meta[1]
local top = tonumber(meta[2])
local created = tonumber(meta[3] or '0')
local since = tonumber(ARGV[1])
local sinceEpoch = ARGV[2]
local given = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
if given >= 0 and since == 0 and created >= given and created < given + ttl then
  sinceEpoch = epoch
end
if since < 0 or sinceEpoch ~= epoch or since >= top then
  return {epoch, top, now, 'none', {}, sinceEpoch}
end
local missed = top - since
local cap = tonumber(ARGV[6]) * 3
if missed > tonumber(ARGV[5]) or cap <= 0 then
  return {epoch, top, now, 'refused', {}, sinceEpoch}
end
local entries = {}
local bytes = 0
local from = (since + 1) .. '-1'
while #entries < missed do
  local page = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 100)
  if #page == 0 then break end
  if #entries == 0 then
    local first = page[1]
    if first[1] ~= (since + 1) .. '-1' or tonumber(first[2][4]) + ttl <= now then
      return {epoch, top, now, 'refused', {}, sinceEpoch}
    end
  end
  for _, entry in ipairs(page) do
    bytes = bytes + string.len(entry[2][2])
    if bytes > cap then return {epoch, top, now, 'refused', {}, sinceEpoch} end
    entries[#entries + 1] = entry
  end
  from = '(' .. page[#page][1]
end
return {epoch, top, now, 'read', entries, sinceEpoch}
`;

/** What the empty positions of a Redis history carry: one stream for every instance. */
const EMPTY_TAG = "r";

const nothingKept = () => ({ first: undefined, frames: [] });

// KEYS: stream, meta. ARGV: how many, ttl, a new epoch. Epoch ('' without a stream), top,
// the server's time, and the last entries, newest first.
const LATEST = `${PRIMARY}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local meta = redis.call('HMGET', KEYS[2], 'epoch', 'top', 'primary')
if not meta[1] then return {'', 0, now, {}} end
if meta[3] ~= primary() then
  restart(ARGV[3], 0, ARGV[2], primary())
  return {ARGV[3], 0, now, {}}
end
local entries = {}
if tonumber(ARGV[1]) > 0 then
  entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[1])
end
return {meta[1], tonumber(meta[2]), now, entries}
`;

/** The scripts, as ioredis commands on the relay's publishing connection. */
interface HistoryCommands {
  socketapiHistoryPublish(...args: (string | number)[]): Promise<number>;
  socketapiHistoryRecover(
    ...args: (string | number)[]
  ): Promise<[string, number, number, "none" | "refused" | "read", [string, string[]][], string]>;
  socketapiHistoryLatest(
    ...args: (string | number)[]
  ): Promise<[string, number, number, [string, string[]][]]>;
}

/**
 * The Redis relay's history: Redis Streams, one per concrete channel name, trimmed to
 * `size` and expiring `ttl` after the last broadcast. A client that reconnects to any
 * instance recovers from it.
 */
export class RedisHistory implements SharedHistoryStore {
  readonly shared = true;
  readonly #connection: () => RedisClient | undefined;
  readonly #names: RedisNames;
  readonly #defined = new WeakSet<RedisClient>();

  constructor(connection: () => RedisClient | undefined, names: RedisNames) {
    this.#connection = connection;
    this.#names = names;
  }

  async publish(
    channel: string,
    frame: string,
    options: HistoryOptions,
    except?: { readonly except: string },
  ): Promise<number> {
    const redis = this.#commands();
    return Number(
      await redis.socketapiHistoryPublish(
        this.#names.key("history", channel),
        this.#names.key("history-meta", channel),
        this.#names.topic(channel),
        frame,
        options.size,
        Math.ceil(options.ttl),
        newEpoch(),
        // For everyone but one connection: the stamped frame goes out targeted.
        except ? `${HISTORY_MARK}#${JSON.stringify(except)}\n` : HISTORY_MARK,
        options.maxBytes ?? DEFAULT_HISTORY_BYTES,
        this.#names.publishCommand,
      ),
    );
  }

  async recover(
    channel: string,
    since: StreamPosition | undefined,
    options: HistoryOptions,
    maxBytes: number,
  ): Promise<Recovery> {
    const redis = this.#commands();
    const { size, ttl } = options;
    const [epoch, top, now, status, entries, sinceEpoch] = await redis.socketapiHistoryRecover(
      this.#names.key("history", channel),
      this.#names.key("history-meta", channel),
      since?.offset ?? -1,
      since?.epoch ?? "",
      emptySince(since, EMPTY_TAG) ?? -1,
      Math.ceil(ttl),
      size,
      Math.max(0, maxBytes),
      newEpoch(),
    );
    const recovery = { tag: EMPTY_TAG, now: Number(now), ttl, size, maxBytes };
    // Nothing was broadcast on it within its ttl: Redis keeps nothing for it.
    if (epoch === "") return recoveryOfStream(undefined, since, recovery, nothingKept);
    const position = { offset: Number(top), epoch: String(epoch) };
    if (status === "refused") return { position, recovered: false, frames: [] };
    const from = since && { offset: since.offset, epoch: String(sinceEpoch) };
    return recoveryOf(
      position,
      from,
      maxBytes,
      () => {
        // Those past their ttl are not kept: Redis trims by count and bytes only.
        const kept: { offset: number; frame: string }[] = [];
        for (const [id, fields] of entries) {
          const frame = fieldOf(fields, "f");
          if (frame === undefined || Number(fieldOf(fields, "t")) + ttl <= Number(now)) continue;
          kept.push({ offset: Number.parseInt(id, 10), frame });
        }
        return { first: kept[0]?.offset, frames: kept.map((entry) => entry.frame) };
      },
      size,
    );
  }

  async latest(channel: string, count: number, options: HistoryOptions): Promise<Latest> {
    const redis = this.#commands();
    const [epoch, top, now, entries] = await redis.socketapiHistoryLatest(
      this.#names.key("history", channel),
      this.#names.key("history-meta", channel),
      Math.max(0, count),
      Math.ceil(options.ttl),
      newEpoch(),
    );
    if (epoch === "") {
      return { position: { offset: 0, epoch: emptyEpoch(EMPTY_TAG, Number(now)) }, frames: [] };
    }
    const frames: string[] = [];
    for (const [, fields] of [...entries].reverse()) {
      const frame = fieldOf(fields, "f");
      if (frame !== undefined && Number(fieldOf(fields, "t")) + options.ttl > Number(now)) {
        frames.push(frame);
      }
    }
    return { position: { offset: Number(top), epoch: String(epoch) }, frames };
  }

  /** The publishing connection, with the scripts defined on it. */
  #commands(): RedisClient & HistoryCommands {
    const redis = this.#connection();
    if (!redis) throw new Error("socketapi/redis: the relay is not open.");
    if (!this.#defined.has(redis)) {
      redis.defineCommand("socketapiHistoryPublish", { numberOfKeys: 3, lua: PUBLISH });
      redis.defineCommand("socketapiHistoryRecover", { numberOfKeys: 2, lua: RECOVER });
      redis.defineCommand("socketapiHistoryLatest", { numberOfKeys: 2, lua: LATEST });
      this.#defined.add(redis);
    }
    return redis as RedisClient & HistoryCommands;
  }
}

/** A field of a stream entry, given as `[name, value, name, value, ...]`. */
function fieldOf(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}
