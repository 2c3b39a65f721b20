// The Redis relay's connections to a Redis Cluster, with `ioredis`'s `Cluster`: commands
// and scripts routed to the primary of their slot, and sharded pub/sub (SSUBSCRIBE,
// SPUBLISH, Redis 7+) over one subscribed connection per primary, so that a channel's
// messages travel only within the shard that owns its slot. ioredis follows failovers and
// slot moves, and subscribes again where a channel's slot went.
import type { Cluster, ClusterNode, ClusterOptions, RedisOptions } from "ioredis";
import { errorMessage, loadOptional } from "../src/adapter.ts";
import type { RedisConnections, RedisEvents } from "./redis-client.ts";
import type { RedisNames } from "./redis-names.ts";

/** Connections to a Redis Cluster, which `nodes` (some of its nodes) lead to. */
export class ClusterRedis implements RedisConnections {
  readonly name: string;
  readonly names: RedisNames;
  readonly #nodes: ClusterNode[];
  readonly #options: ClusterOptions;
  #cluster: Cluster | undefined;
  /** The shard channels subscribed: ioredis subscribes them again after a failover or a move. */
  readonly #subscribed = new Set<string>();
  #up = false;

  constructor(
    name: string,
    names: RedisNames,
    nodes: readonly ClusterNode[],
    redisOptions: RedisOptions,
    options: ClusterOptions,
  ) {
    this.name = name;
    this.names = names;
    this.#nodes = [...nodes];
    // ioredis takes these at the cluster's level only.
    const { enableOfflineQueue, retryStrategy: _, ...perNode } = redisOptions;
    this.#options = {
      shardedSubscribers: true,
      enableOfflineQueue: enableOfflineQueue ?? false,
      // A command the cluster refuses (moved, failing over) fails at once, and is not sent
      // again later: a broadcast sent again would overtake those made after it. It is
      // counted lost, and the relay asks the cluster where the slots are now.
      maxRedirections: 0,
      // Where the slots are is asked at every failed command (and when a subscriber is
      // moved); this often besides, in case nothing failed. Sooner costs latency: asking
      // every 2 s put the cross-process p99 at 15 ms against 10 ms at 5 s.
      slotsRefreshInterval: 30_000,
      lazyConnect: true,
      clusterRetryStrategy: (attempt) => Math.min(attempt * 100, 2000),
      ...options,
      redisOptions: { ...perNode, ...options.redisOptions },
    };
  }

  get commands(): Cluster | undefined {
    return this.#cluster;
  }

  async connect(events: RedisEvents): Promise<void> {
    const { Cluster } = await loadOptional<typeof import("ioredis")>(
      "ioredis",
      "socketapi/redis",
      () => import("ioredis"),
    );
    // ioredis 6 declares `replyMapping` optional without `undefined` in its constructor.
    const cluster = new Cluster(
      this.#nodes,
      this.#options as ClusterOptions & { redisOptions: { replyMapping?: "legacy" } },
    );
    this.#cluster = cluster;
    cluster.on("smessage", (topic: string, message: string) => events.message(topic, message));
    let firstError: unknown;
    cluster.on("error", (error: unknown) => {
      firstError ??= error;
      if (this.#up) events.trouble(error);
    });
    cluster.on("node error", (error: unknown) => {
      firstError ??= error;
      if (this.#up) events.trouble(error);
    });
    try {
      await cluster.connect();
    } catch (error) {
      cluster.disconnect();
      const cause = firstError ?? error;
      throw new Error(`socketapi/redis: cannot connect to ${this.name}: ${errorMessage(cause)}`, {
        cause,
      });
    }
    this.#up = true;
    cluster.on("close", () => {
      if (!this.#up) return;
      this.#up = false;
      events.down(new Error(`${this.name} closed the connection`));
    });
    // ioredis subscribed again where the slots are now (after a failover or a move).
    cluster.on("subscribersReady", () => {
      if (this.#up) events.resumed();
    });
    cluster.on("ready", () => {
      if (this.#up) return;
      this.#up = true;
      events.up();
    });
  }

  async subscribe(topics: readonly string[]): Promise<void> {
    const cluster = this.#cluster;
    if (!cluster) return;
    // ioredis takes the shard channels of one slot per call; those it has it keeps.
    const fresh = topics.filter((topic) => !this.#subscribed.has(topic));
    await Promise.all(
      fresh.map(async (topic) => {
        await cluster.ssubscribe(topic);
        this.#subscribed.add(topic);
      }),
    );
  }

  async unsubscribe(topic: string): Promise<void> {
    if (!this.#subscribed.delete(topic)) return;
    await this.#cluster?.sunsubscribe(topic);
  }

  publish(topic: string, message: string): Promise<unknown> {
    const cluster = this.#cluster;
    if (!cluster) return Promise.reject(new Error(`${this.name} is not connected`));
    return cluster.spublish(topic, message);
  }

  /** A command failed (a moved slot, a failover?): where the slots are is asked again. */
  commandFailed(): void {
    this.#cluster?.refreshSlotsCache();
  }

  /** Each primary counts the subscribers of the shard channels in its slots: their sum. */
  async listeners(topics: readonly string[]): Promise<number[]> {
    const counts = topics.map(() => 0);
    if (topics.length === 0) return counts;
    const replies = await this.#everyPrimary(
      (node) => node.pubsub("SHARDNUMSUB", ...topics) as Promise<(string | number)[]>,
    );
    for (const reply of replies) {
      topics.forEach((_, i) => {
        counts[i] = (counts[i] ?? 0) + Number(reply[i * 2 + 1] ?? 0);
      });
    }
    return counts;
  }

  async topics(pattern: string): Promise<string[]> {
    const replies = await this.#everyPrimary(
      (node) => node.pubsub("SHARDCHANNELS", pattern) as Promise<string[]>,
    );
    return [...new Set(replies.flat())];
  }

  /** `ask` of every primary the cluster knows now. */
  #everyPrimary<T>(ask: (node: import("ioredis").Redis) => Promise<T>): Promise<T[]> {
    const cluster = this.#cluster;
    if (!cluster) return Promise.resolve([]);
    return Promise.all(cluster.nodes("master").map(ask));
  }

  async close(): Promise<void> {
    this.#up = false;
    const cluster = this.#cluster;
    await cluster?.quit().catch(() => cluster.disconnect());
  }
}
