/**
 * Carries an app's broadcasts between its instances over Redis pub/sub, with `ioredis` (an
 * optional dependency: `npm install ioredis`): one Redis, a Redis Cluster (sharded pub/sub)
 * or a Redis watched by Sentinel. Each instance subscribes only to the channels it has
 * subscribers of, so a broadcast costs Redis one publish and one delivery per instance
 * that needs it.
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
import type { ClusterOptions, RedisOptions } from "ioredis";
import {
  type BrokerLink,
  BrokerRelay,
  type BrokerRelayOptions,
  CENSUS_TOPIC,
  type LinkEvents,
  redactedUrl,
} from "../src/adapter.ts";
import type { Relay } from "../src/index.ts";
import type { RedisConnections } from "./redis-client.ts";
import { ClusterRedis } from "./redis-cluster.ts";
import { HISTORY_MARK, RedisHistory } from "./redis-history.ts";
import { RedisNames } from "./redis-names.ts";
import { RedisPresence } from "./redis-presence.ts";
import { SingleRedis } from "./redis-single.ts";

/** A node of a Redis Cluster, or a Sentinel: `"10.0.0.5:6379"`, or its host and port. */
export type RedisNode = string | { readonly host: string; readonly port: number };

/** Options of {@link redisRelay}. */
export interface RedisRelayOptions extends BrokerRelayOptions {
  /** The Redis URL: `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS. */
  url?: string | undefined;
  /**
   * Some nodes of a Redis Cluster (7 or later), instead of `url`: the relay finds the
   * others, broadcasts over sharded pub/sub, and follows failovers and slot moves.
   */
  cluster?: readonly RedisNode[] | undefined;
  /**
   * Sentinels watching the Redis to use, instead of `url`: the relay asks them for the
   * primary named `sentinelName`, and follows it when they fail over to a replica.
   */
  sentinels?: readonly RedisNode[] | undefined;
  /** The primary's name with `sentinels` (`sentinel monitor NAME ...`). Default `mymaster`. */
  sentinelName?: string | undefined;
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
  /**
   * More `ioredis` options (TLS, a password for `cluster` or `sentinels`, ...): for both of
   * the relay's connections, or for every node of a cluster.
   */
  redis?: RedisOptions | undefined;
  /** More options of `ioredis`'s `Cluster`, with `cluster`. */
  clusterOptions?: ClusterOptions | undefined;
}

/**
 * A relay over Redis pub/sub: one Redis, a Redis Cluster (sharded pub/sub), or a Redis
 * that Sentinel watches. The app connects it when it starts serving (`serve` awaits it;
 * elsewhere, `await app.ready()`): an unreachable Redis or wrong credentials fail the start
 * with the reason. Afterwards, when Redis goes away, local broadcasts keep working,
 * broadcasts to other instances are lost (counted in `stats.lost`, reported once to the
 * app's `onError`, shown by `health`), and when it is back each instance subscribes again
 * by itself.
 *
 * @example
 * ```ts
 * const relay = redisRelay({ url: process.env.REDIS_URL, prefix: "chat:" });
 * const app = new SocketAPI({ relay });
 * ```
 *
 * @example
 * ```ts
 * // A Redis Cluster: a few of its nodes; the relay finds the rest.
 * const relay = redisRelay({ cluster: ["10.0.0.1:6379", "10.0.0.2:6379"] });
 * // Sentinel: where the Sentinels are, and the primary's name.
 * const watched = redisRelay({ sentinels: ["10.0.0.1:26379"], sentinelName: "mymaster" });
 * ```
 */
export function redisRelay(options: string | RedisRelayOptions = {}): Relay {
  const resolved = typeof options === "string" ? { url: options } : options;
  return new BrokerRelay(new RedisLink(resolved), resolved);
}

/** How long an instance's id is: every message starts with its sender's. */
const ORIGIN_LENGTH = 16;

/** The relay's side of Redis: channels as the relay sees them, over its connections. */
class RedisLink implements BrokerLink {
  readonly name: string;
  readonly #connections: RedisConnections;
  readonly #names: RedisNames;
  /** This instance's id: its own messages come back to it, and are skipped. */
  readonly #origin = crypto.randomUUID().replaceAll("-", "").slice(0, ORIGIN_LENGTH);
  /** Channels with history keep it in Redis Streams, shared by every instance. */
  readonly history: RedisHistory;
  /** Channels with presence count their members in Redis, across every instance. */
  readonly presence: RedisPresence;

  constructor(options: RedisRelayOptions) {
    this.#connections = connectionsOf(options);
    this.#names = this.#connections.names;
    this.name = this.#connections.name;
    const commands = () => this.#connections.commands;
    this.history = new RedisHistory(commands, this.#names);
    this.presence = new RedisPresence(
      commands,
      this.#names,
      this.#origin,
      HISTORY_MARK,
      options.presenceHeartbeat,
    );
  }

  async connect(events: LinkEvents): Promise<void> {
    const names = this.#names;
    const origin = this.#origin;
    await this.#connections.connect({
      message(topic, message) {
        if (message.startsWith(origin)) return;
        const channel = names.channelOf(topic);
        if (channel !== undefined) events.message(channel, message.slice(ORIGIN_LENGTH));
      },
      down: (error) => events.down(error),
      up: () => events.up(),
      trouble: (error) => events.trouble?.(error),
      resumed: () => events.resumed?.(),
    });
  }

  async subscribe(channels: readonly string[]): Promise<void> {
    await this.#connections.subscribe(channels.map((channel) => this.#names.topic(channel)));
  }

  async unsubscribe(channel: string): Promise<void> {
    await this.#connections.unsubscribe(this.#names.topic(channel));
  }

  async publish(channel: string, frame: string): Promise<void> {
    await this.#connections.publish(this.#names.topic(channel), this.#origin + frame);
  }

  async otherPrefixes(): Promise<{ prefix: string; instances: number }[]> {
    // The census topic without the prefix: what every prefix's census topic ends with.
    const suffix = new RedisNames("", this.#names.tagged).topic(CENSUS_TOPIC);
    const topics = await this.#connections.topics(`*${suffix}`);
    const others = topics.filter((topic) => topic !== this.#names.topic(CENSUS_TOPIC));
    if (others.length === 0) return [];
    const counts = await this.#connections.listeners(others);
    return others.map((topic, i) => ({
      prefix: topic.slice(0, -suffix.length),
      instances: counts[i] ?? 0,
    }));
  }

  ping(): Promise<void> {
    return this.#connections.ping?.() ?? Promise.resolve();
  }

  reconnect(): void {
    this.#connections.reconnect?.();
  }

  commandFailed(): void {
    this.#connections.commandFailed?.();
  }

  async listeners(channel: string): Promise<number> {
    const [count] = await this.#connections.listeners([this.#names.topic(channel)]);
    return count ?? 0;
  }

  async close(): Promise<void> {
    this.presence.stop();
    await this.#connections.close();
  }
}

/** The connections the options name: to a cluster, through Sentinel, or to one Redis. */
function connectionsOf(options: RedisRelayOptions): RedisConnections {
  const given = [options.url, options.cluster, options.sentinels].filter((x) => x !== undefined);
  if (given.length > 1) {
    throw new Error("socketapi/redis: give one of url, cluster and sentinels, not several.");
  }
  const prefix = options.prefix ?? "socketapi:";
  // ioredis 6 declares `replyMapping` optional without `undefined` in its constructor:
  // this type fits both it and RedisOptions under `exactOptionalPropertyTypes`.
  const redisOptions: RedisOptions & { replyMapping?: "legacy" } = {
    connectTimeout: options.connectTimeout ?? 5000,
    // Nothing waits for Redis: a command it cannot take now fails now. After a reconnect
    // the relay subscribes again to what it has subscribers of (ioredis would also restore
    // channels left meanwhile).
    enableOfflineQueue: false,
    autoResubscribe: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
    lazyConnect: true,
    ...(options.redis as RedisOptions & { replyMapping?: "legacy" }),
  };
  if (options.cluster) {
    const nodes = options.cluster.map((node) => nodeOf(node, 6379));
    if (nodes.length === 0) throw new Error("socketapi/redis: cluster lists no node.");
    const name = `Redis Cluster at ${nodes.map(({ host, port }) => `${host}:${port}`).join(", ")}`;
    return new ClusterRedis(
      name,
      new RedisNames(prefix, true),
      nodes,
      redisOptions,
      options.clusterOptions ?? {},
    );
  }
  if (options.sentinels) {
    const sentinels = options.sentinels.map((node) => nodeOf(node, 26379));
    if (sentinels.length === 0) throw new Error("socketapi/redis: sentinels lists no Sentinel.");
    const sentinelName = options.sentinelName ?? "mymaster";
    const where = sentinels.map(({ host, port }) => `${host}:${port}`).join(", ");
    return new SingleRedis(
      `Redis ${JSON.stringify(sentinelName)} of the Sentinels at ${where}`,
      new RedisNames(prefix, false),
      undefined,
      // Told by the Sentinels of a failover at once, not at the next failed command.
      { failoverDetector: true, ...redisOptions, sentinels, name: sentinelName },
    );
  }
  const url = options.url ?? "redis://127.0.0.1:6379";
  return new SingleRedis(
    `Redis at ${redactedUrl(url)}`,
    new RedisNames(prefix, false),
    url,
    redisOptions,
  );
}

/** `host:port` (or `[v6]:port`) as ioredis takes it, on `port` when it names none. */
function nodeOf(node: RedisNode, port: number): { host: string; port: number } {
  if (typeof node !== "string") return { host: node.host, port: node.port };
  const match = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(node.trim());
  const host = match?.[1];
  if (!host) throw new Error(`socketapi/redis: ${JSON.stringify(node)} is not host:port.`);
  return { host, port: match[2] === undefined ? port : Number(match[2]) };
}
