/**
 * Carries an app's broadcasts between its instances over Redis pub/sub, with `ioredis` (an
 * optional dependency: `npm install ioredis`). Each instance subscribes only to the
 * channels it has subscribers of, so a broadcast costs Redis one publish and one delivery
 * per instance that needs it.
 *
 * @example
 * ```ts
 * import { SocketAPI } from "socketapi";
 * import { serve } from "socketapi/node";
 * import { redisRelay } from "socketapi/redis";
 *
 * const app = new SocketAPI({ relay: redisRelay("redis://127.0.0.1:6379") });
 * await serve(app, { port: 8000 }); // fails here, saying why, if Redis cannot be reached
 * ```
 *
 * @module
 */
import type { Redis, RedisOptions } from "ioredis";
import {
  type BrokerLink,
  BrokerRelay,
  type BrokerRelayOptions,
  CENSUS_TOPIC,
  errorMessage,
  type LinkEvents,
  loadOptional,
  redactedUrl,
} from "../src/adapter.ts";
import type { Relay } from "../src/index.ts";
import { HISTORY_MARK, RedisHistory } from "./redis-history.ts";
import { RedisPresence } from "./redis-presence.ts";

/** Options of {@link redisRelay}. */
export interface RedisRelayOptions extends BrokerRelayOptions {
  /** The Redis URL: `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS. */
  url?: string | undefined;
  /**
   * Put before each channel's name to make its Redis channel, so that several apps can
   * share one Redis. Default `socketapi:`.
   */
  prefix?: string | undefined;
  /** How long the first connection may take before start-up fails. Default 5000 ms. */
  connectTimeout?: number | undefined;
  /**
   * How often each instance tells Redis it is alive, in ms (default 5000): the members of an
   * instance that dies leave within four of these.
   */
  presenceHeartbeat?: number | undefined;
  /** More `ioredis` options (TLS, Sentinel, ...), for both of the relay's connections. */
  redis?: RedisOptions | undefined;
}

/**
 * A relay over Redis pub/sub. The app connects it when it starts serving (`serve` awaits
 * it; elsewhere, `await app.ready()`): an unreachable Redis or wrong credentials fail the
 * start with the reason. Afterwards, when Redis goes away, local broadcasts keep working,
 * broadcasts to other instances are lost (counted in `stats.lost`, reported once to the
 * app's `onError`), and when it is back each instance subscribes again by itself.
 *
 * @example
 * ```ts
 * const relay = redisRelay({ url: process.env.REDIS_URL, prefix: "chat:" });
 * const app = new SocketAPI({ relay });
 * ```
 */
export function redisRelay(options: string | RedisRelayOptions = {}): Relay {
  const resolved = typeof options === "string" ? { url: options } : options;
  return new BrokerRelay(new RedisLink(resolved), resolved);
}

/** How long an instance's id is: every message starts with its sender's. */
const ORIGIN_LENGTH = 16;

/** Two connections to Redis: one subscribed (Redis allows no other command on it), one to publish. */
class RedisLink implements BrokerLink {
  readonly name: string;
  readonly #url: string;
  readonly #prefix: string;
  readonly #options: RedisRelayOptions;
  /** This instance's id: its own messages come back to it, and are skipped. */
  readonly #origin = crypto.randomUUID().replaceAll("-", "").slice(0, ORIGIN_LENGTH);
  #publisher: Redis | undefined;
  #subscriber: Redis | undefined;
  #up = false;
  /** Channels with history keep it in Redis Streams, shared by every instance. */
  readonly history: RedisHistory;
  /** Channels with presence count their members in Redis, across every instance. */
  readonly presence: RedisPresence;

  constructor(options: RedisRelayOptions) {
    this.#url = options.url ?? "redis://127.0.0.1:6379";
    this.#prefix = options.prefix ?? "socketapi:";
    this.history = new RedisHistory(() => this.#publisher, this.#prefix);
    this.presence = new RedisPresence(
      () => this.#publisher,
      this.#prefix,
      this.#origin,
      HISTORY_MARK,
      options.presenceHeartbeat,
    );
    this.#options = options;
    this.name = `Redis at ${redactedUrl(this.#url)}`;
  }

  async connect(events: LinkEvents): Promise<void> {
    const { Redis } = await loadOptional<typeof import("ioredis")>(
      "ioredis",
      "socketapi/redis",
      () => import("ioredis"),
    );
    // ioredis 6 declares `replyMapping` optional without `undefined` in its constructor:
    // this type fits both it and RedisOptions under `exactOptionalPropertyTypes`.
    const options: RedisOptions & { replyMapping?: "legacy" } = {
      connectTimeout: this.#options.connectTimeout ?? 5000,
      // Nothing waits for Redis: a command it cannot take now fails now. After a reconnect
      // the relay subscribes again to what it has subscribers of (ioredis would also restore
      // channels left meanwhile).
      enableOfflineQueue: false,
      autoResubscribe: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
      lazyConnect: true,
      ...(this.#options.redis as RedisOptions & { replyMapping?: "legacy" }),
    };
    const publisher = new Redis(this.#url, { ...options, connectionName: "socketapi-publish" });
    const subscriber = new Redis(this.#url, { ...options, connectionName: "socketapi-subscribe" });
    this.#publisher = publisher;
    this.#subscriber = subscriber;
    const prefix = this.#prefix;
    const origin = this.#origin;
    subscriber.on("message", (topic: string, message: string) => {
      if (message.startsWith(origin) || !topic.startsWith(prefix)) return;
      events.message(topic.slice(prefix.length), message.slice(ORIGIN_LENGTH));
    });
    // The first error says why a connection failed (refused, WRONGPASS, ...); after the
    // start, ioredis reports each failed reconnect, and the relay reports the outage once.
    let firstError: unknown;
    for (const client of [publisher, subscriber]) {
      client.on("error", (error: unknown) => {
        firstError ??= error;
      });
    }
    try {
      await Promise.all([publisher.connect(), subscriber.connect()]);
    } catch (error) {
      publisher.disconnect();
      subscriber.disconnect();
      const cause = firstError ?? error;
      throw new Error(`socketapi/redis: cannot connect to ${this.name}: ${errorMessage(cause)}`, {
        cause,
      });
    }
    this.#up = true;
    for (const client of [publisher, subscriber]) {
      client.on("close", () => {
        if (!this.#up) return;
        this.#up = false;
        events.down(new Error(`${this.name} closed the connection`));
      });
      client.on("ready", () => {
        if (this.#up || publisher.status !== "ready" || subscriber.status !== "ready") return;
        this.#up = true;
        events.up();
      });
    }
  }

  async subscribe(channels: readonly string[]): Promise<void> {
    await this.#subscriber?.subscribe(...channels.map((channel) => this.#prefix + channel));
  }

  async unsubscribe(channel: string): Promise<void> {
    // A new connection starts without subscriptions: there is nothing to forget offline.
    if (this.#up) await this.#subscriber?.unsubscribe(this.#prefix + channel);
  }

  async publish(channel: string, frame: string): Promise<void> {
    await this.#publisher?.publish(this.#prefix + channel, this.#origin + frame);
  }

  async otherPrefixes(): Promise<{ prefix: string; instances: number }[]> {
    const publisher = this.#publisher;
    if (!publisher) return [];
    const topics = (await publisher.pubsub("CHANNELS", `*${CENSUS_TOPIC}`)) as string[];
    const others = topics.filter((topic) => topic !== this.#prefix + CENSUS_TOPIC);
    if (others.length === 0) return [];
    const counts = (await publisher.pubsub("NUMSUB", ...others)) as (string | number)[];
    return others.map((topic, i) => ({
      prefix: topic.slice(0, -CENSUS_TOPIC.length),
      instances: Number(counts[i * 2 + 1] ?? 0),
    }));
  }

  async listeners(channel: string): Promise<number> {
    const reply = (await this.#publisher?.pubsub("NUMSUB", this.#prefix + channel)) as
      | [string, number]
      | undefined;
    return Number(reply?.[1] ?? 0);
  }

  async close(): Promise<void> {
    this.#up = false;
    this.presence.stop();
    await Promise.all(
      [this.#publisher, this.#subscriber].map((client) =>
        client?.quit().catch(() => client.disconnect()),
      ),
    );
  }
}
