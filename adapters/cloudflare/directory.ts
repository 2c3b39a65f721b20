// The shard directory: where a Worker's objects are, which of them have subscribers of a
// channel, and the relay that carries a broadcast to them over RPC.

import { env as workerEnv } from "cloudflare:workers";
import type { AnyApp } from "../../src/adapter.ts";
import { type Relay, reportToApp } from "../../src/adapter.ts";
import type { DisconnectTarget, SharedPresenceStore } from "../../src/index.ts";
import { DirectoryPresence, type PresencePlace } from "./directory-presence.ts";
import {
  type CloudflareOptions,
  ConfigurationError,
  DEFAULT_SHARD,
  DIRECTORY_SHARD,
  type ObjectRpc,
} from "./options.ts";

/** Where a Worker's objects are, and which of them have subscribers of a channel. */
export class ObjectDirectory {
  readonly #app: AnyApp;
  readonly #options: CloudflareOptions<unknown>;

  constructor(app: AnyApp, options: CloudflareOptions<unknown>) {
    this.#app = app;
    this.#options = options;
  }

  get sharded(): boolean {
    return this.#options.shard !== undefined;
  }

  stub(shard: string): ObjectRpc {
    const binding = this.#options.binding ?? "SOCKETAPI";
    const namespace = (workerEnv as unknown as Record<string, DurableObjectNamespace | undefined>)[
      binding
    ];
    if (!namespace) {
      throw new ConfigurationError(
        `socketapi/cloudflare: no Durable Object binding named ${binding}: name the binding of ` +
          "the SocketAPIObject class in wrangler.toml, or pass its name as `binding`.",
      );
    }
    return namespace.get(namespace.idFromName(shard)) as unknown as ObjectRpc;
  }

  /** Whether broadcasts on `channel` reach their shards whatever subscribers they have. */
  routesWithoutDirectory(channel: string): boolean {
    return !this.sharded || this.#options.channelShards?.(channel) !== undefined;
  }

  /** The shards a broadcast on `channel` goes to. */
  async shardsOf(channel: string): Promise<string[]> {
    const direct = this.#options.channelShards?.(channel);
    if (direct) return direct;
    if (!this.sharded) return [DEFAULT_SHARD];
    return this.stub(DIRECTORY_SHARD).shardsOf(channel);
  }

  /** Every shard that holds connections: the one object when the app is not sharded. */
  async connectedShards(): Promise<string[]> {
    if (!this.sharded) return [DEFAULT_SHARD];
    return this.stub(DIRECTORY_SHARD).connectedShards();
  }

  report(error: unknown, channel: string | undefined, phase = "broadcast"): void {
    reportToApp(this.#app, error, channel === undefined ? { phase } : { channel, phase });
  }
}

/**
 * The relay between a Worker's objects: an object joins a channel in the shard directory
 * when it gets its first subscriber of it, and leaves with the last (one object's updates
 * reach the directory in order); a broadcast goes over RPC to every other shard that has
 * subscribers. The Worker itself (which holds no sockets) publishes through one too.
 */
export class DirectoryRelay implements Relay {
  readonly #directory: ObjectDirectory;
  /** The object this relay serves (`undefined` for the Worker): its shard and its context. */
  readonly #object: { shard(): string | undefined; ctx: DurableObjectState } | undefined;
  #updates: Promise<void> = Promise.resolve();
  /**
   * Presence across shards: a sharded object tells each channel's roster its share; the
   * Worker asks (the roster, or the single object). A single object needs no store.
   */
  readonly presence: SharedPresenceStore | undefined;

  constructor(
    directory: ObjectDirectory,
    object?: { shard(): string | undefined; ctx: DurableObjectState } & Pick<
      PresencePlace,
      "deliverHere"
    >,
  ) {
    this.#directory = directory;
    this.#object = object;
    this.presence =
      object === undefined || directory.sharded
        ? new DirectoryPresence(directory, object)
        : undefined;
  }

  // Frames from other shards arrive over RPC (`deliver`), straight into the object's index.
  open(): void {}

  join(channel: string): Promise<void> {
    return this.track(channel, true);
  }

  /** An object hears all of a channel's broadcasts unless the directory routes them. */
  hearsEverything(channel: string): boolean {
    return this.#directory.routesWithoutDirectory(channel);
  }

  leave(channel: string): void {
    this.#object?.ctx.waitUntil(this.track(channel, false));
  }

  /** Tells the directory that this shard has (or no longer has) subscribers of `channel`. */
  track(channel: string, present: boolean): Promise<void> {
    const shard = this.#object?.shard();
    if (!this.#directory.sharded || shard === undefined) return Promise.resolve();
    const update = this.#updates.then(() =>
      this.#directory.stub(DIRECTORY_SHARD).trackChannel(channel, shard, present),
    );
    // The chain goes on after a failed update; the caller sees the failure.
    this.#updates = update.catch(() => {});
    return update;
  }

  /**
   * Delivers over RPC to every other shard with subscribers of `channel`. A shard that
   * fails (evicted mid-call, overloaded) costs its own subscribers this broadcast, not
   * everyone's: the others are counted, the failure is reported.
   */
  async publish(channel: string, frame: string): Promise<number> {
    const here = this.#object?.shard();
    const shards = (await this.#directory.shardsOf(channel)).filter((shard) => shard !== here);
    const outcomes = await Promise.allSettled(
      shards.map((shard) => this.#directory.stub(shard).deliver(channel, frame)),
    );
    let delivered = 0;
    for (const outcome of outcomes) {
      if (outcome.status === "fulfilled") delivered += outcome.value;
      else this.#directory.report(outcome.reason, channel);
    }
    return delivered;
  }

  /** Asks every other shard with subscribers of `channel` how many it has. */
  async countSubscribers(channel: string): Promise<number> {
    const here = this.#object?.shard();
    const shards = (await this.#directory.shardsOf(channel)).filter((shard) => shard !== here);
    const outcomes = await Promise.allSettled(
      shards.map((shard) => this.#directory.stub(shard).subscribersHere(channel)),
    );
    let count = 0;
    for (const outcome of outcomes) {
      if (outcome.status === "fulfilled") count += outcome.value;
      else this.#directory.report(outcome.reason, channel);
    }
    return count;
  }

  /**
   * Tells the directory that this shard holds connections (its first one opened) or none
   * (its last one closed): what a disconnect of a user asks.
   */
  trackShard(present: boolean): Promise<void> {
    const shard = this.#object?.shard();
    if (!this.#directory.sharded || shard === undefined) return Promise.resolve();
    const update = this.#updates.then(() =>
      this.#directory.stub(DIRECTORY_SHARD).trackShard(shard, present),
    );
    this.#updates = update.catch(() => {});
    return update;
  }

  /** Closes the connections `target` names on every other shard that holds connections. */
  async disconnect(target: DisconnectTarget, code: number, reason: string): Promise<number> {
    const here = this.#object?.shard();
    const shards = (await this.#directory.connectedShards()).filter((shard) => shard !== here);
    const outcomes = await Promise.allSettled(
      shards.map((shard) => this.#directory.stub(shard).disconnectHere(target, code, reason)),
    );
    let closed = 0;
    for (const outcome of outcomes) {
      if (outcome.status === "fulfilled") closed += outcome.value;
      else this.#directory.report(outcome.reason, undefined, "disconnect");
    }
    return closed;
  }

  async close(): Promise<void> {}
}
