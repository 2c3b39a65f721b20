// Channel history in Redis Streams, shared by every instance of an app: one stream per
// concrete channel name, stamped and published in one script so that the order of
// offsets is the order every instance receives broadcasts in.
import type { Redis } from "ioredis";
import { recoveryOf } from "../src/adapter.ts";
import type { HistoryOptions, Recovery, SharedHistoryStore, StreamPosition } from "../src/index.ts";

/**
 * What a history broadcast starts with on the relay's Redis channel, where other messages
 * start with their sender's id (hex): every instance takes it, its sender included.
 */
export const HISTORY_MARK = "~".repeat(16);

// KEYS: stream, meta, Redis channel. ARGV: frame, size, ttl (ms), a new epoch, what the
// published message starts with (the mark, and a target for everyone but one connection).
// A stream whose meta expired starts again under a new epoch.
const PUBLISH = `
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'top', 0)
end
local top = redis.call('HINCRBY', KEYS[2], 'top', 1)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stamped = string.sub(ARGV[1], 1, -2) .. ',"offset":' .. top .. ',"epoch":"' .. epoch .. '"}'
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], top .. '-1', 'f', stamped, 't', now)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', KEYS[3], ARGV[5] .. stamped)
return top
`;

// KEYS: stream, meta. ARGV: since offset (-1: none), since epoch, a new epoch, ttl, size.
// Returns epoch, top, the server's time (ms), and the entries after since when the epoch
// is the same (at most size).
const RECOVER = `
local epoch = redis.call('HGET', KEYS[2], 'epoch')
local top = 0
if not epoch then
  epoch = ARGV[3]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'top', 0)
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
else
  top = tonumber(redis.call('HGET', KEYS[2], 'top'))
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local since = tonumber(ARGV[1])
local entries = {}
if since >= 0 and since < top and epoch == ARGV[2] then
  entries = redis.call('XRANGE', KEYS[1], (since + 1) .. '-1', '+', 'COUNT', ARGV[5])
end
return {epoch, top, now, entries}
`;

/** The two scripts, as ioredis commands on the relay's publishing connection. */
interface HistoryCommands {
  socketapiHistoryPublish(...args: (string | number)[]): Promise<number>;
  socketapiHistoryRecover(
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
  readonly #connection: () => Redis | undefined;
  readonly #prefix: string;
  readonly #defined = new WeakSet<Redis>();

  constructor(connection: () => Redis | undefined, prefix: string) {
    this.#connection = connection;
    this.#prefix = prefix;
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
        `${this.#prefix}history:${channel}`,
        `${this.#prefix}history-meta:${channel}`,
        this.#prefix + channel,
        frame,
        options.size,
        Math.ceil(options.ttl),
        crypto.randomUUID().slice(0, 13),
        // For everyone but one connection: the stamped frame goes out targeted.
        except ? `${HISTORY_MARK}#${JSON.stringify(except)}\n` : HISTORY_MARK,
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
    const [epoch, top, now, entries] = await redis.socketapiHistoryRecover(
      `${this.#prefix}history:${channel}`,
      `${this.#prefix}history-meta:${channel}`,
      since?.offset ?? -1,
      since?.epoch ?? "",
      crypto.randomUUID().slice(0, 13),
      Math.ceil(options.ttl),
      options.size,
    );
    const position = { offset: Number(top), epoch: String(epoch) };
    return recoveryOf(position, since, maxBytes, () => {
      // Those past their ttl are not kept: Redis trims by count only.
      const kept: { offset: number; frame: string }[] = [];
      for (const [id, fields] of entries) {
        const frame = fieldOf(fields, "f");
        if (frame === undefined || Number(fieldOf(fields, "t")) + options.ttl <= Number(now))
          continue;
        kept.push({ offset: Number.parseInt(id, 10), frame });
      }
      return { first: kept[0]?.offset, frames: kept.map((entry) => entry.frame) };
    });
  }

  /** The publishing connection, with the scripts defined on it. */
  #commands(): Redis & HistoryCommands {
    const redis = this.#connection();
    if (!redis) throw new Error("socketapi/redis: the relay is not open.");
    if (!this.#defined.has(redis)) {
      redis.defineCommand("socketapiHistoryPublish", { numberOfKeys: 3, lua: PUBLISH });
      redis.defineCommand("socketapiHistoryRecover", { numberOfKeys: 2, lua: RECOVER });
      this.#defined.add(redis);
    }
    return redis as Redis & HistoryCommands;
  }
}

/** A field of a stream entry, given as `[name, value, name, value, ...]`. */
function fieldOf(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}
