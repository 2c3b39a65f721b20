// What the Redis relay needs of its connections, whether they go to one Redis (with or
// without Sentinel) or to a Redis Cluster.
import type { Cluster, Redis } from "ioredis";
import type { RedisNames } from "./redis-names.ts";

/** A connection that takes commands and scripts: one Redis, or a cluster's router. */
export type RedisClient = Redis | Cluster;

/** What the connections tell the relay of, as it happens. */
export interface RedisEvents {
  /** A message on a pub/sub channel of the relay's. */
  message(topic: string, message: string): void;
  /** Every connection to Redis is lost (they reconnect by themselves). */
  down(error: unknown): void;
  /** They are back: what the relay subscribed to must be subscribed again. */
  up(): void;
  /** Part of Redis failed (a node of a cluster): what goes through it may be lost meanwhile. */
  trouble(error: unknown): void;
  /** The subscriptions were made again by the client itself (a cluster's, after a move). */
  resumed(): void;
}

/** The relay's connections to Redis. */
export interface RedisConnections {
  /** Where they go, for messages: `Redis at redis://127.0.0.1:6379`, without credentials. */
  readonly name: string;
  readonly names: RedisNames;
  /** Where commands and scripts go, once connected. */
  readonly commands: RedisClient | undefined;
  /** Connects; rejects saying why it cannot. */
  connect(events: RedisEvents): Promise<void>;
  subscribe(topics: readonly string[]): Promise<void>;
  unsubscribe(topic: string): Promise<void>;
  publish(topic: string, message: string): Promise<unknown>;
  /** How many connections hear each of `topics`. */
  listeners(topics: readonly string[]): Promise<number[]>;
  /** A command sent over them failed: a cluster's connections ask where the slots are. */
  commandFailed?(): void;
  /** Asks every connection for an answer (PING); resolves once each gave it. */
  ping?(): Promise<void>;
  /** Drops every connection and makes it again. */
  reconnect?(): void;
  /** The pub/sub channels matching `pattern` that somebody hears. */
  topics(pattern: string): Promise<string[]>;
  close(): Promise<void>;
}
