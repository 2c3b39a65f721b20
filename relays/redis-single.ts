// The Redis relay's connections to one Redis, found directly or through Sentinel: one
// subscribed (Redis allows no other command on it), one for everything else.
import type { Redis, RedisOptions } from "ioredis";
import { errorMessage, loadOptional } from "../src/adapter.ts";
import type { RedisConnections, RedisEvents } from "./redis-client.ts";
import type { RedisNames } from "./redis-names.ts";

type ConnectionOptions = RedisOptions & { replyMapping?: "legacy" };

/** Connections to one Redis: at `url`, or the primary Sentinel names. */
export class SingleRedis implements RedisConnections {
  readonly name: string;
  readonly names: RedisNames;
  readonly #url: string | undefined;
  readonly #options: ConnectionOptions;
  #publisher: Redis | undefined;
  #subscriber: Redis | undefined;
  #up = false;

  /**
   * @param url where Redis is, or `undefined` when `options` name its Sentinels.
   * @param options `ioredis` options for both connections.
   */
  constructor(name: string, names: RedisNames, url: string | undefined, options: RedisOptions) {
    // ioredis 6 declares `replyMapping` optional without `undefined` in its constructor:
    // this type fits both it and RedisOptions under `exactOptionalPropertyTypes`.
    this.name = name;
    this.names = names;
    this.#url = url;
    this.#options = options as ConnectionOptions;
  }

  get commands(): Redis | undefined {
    return this.#publisher;
  }

  async connect(events: RedisEvents): Promise<void> {
    const { Redis } = await loadOptional<typeof import("ioredis")>(
      "ioredis",
      "socketapi/redis",
      () => import("ioredis"),
    );
    // What a closed connection left unanswered is not sent again: it fails (see "close").
    const options = { autoResendUnfulfilledCommands: false, ...this.#options };
    const make = (connectionName: string) =>
      this.#url === undefined
        ? new Redis({ ...options, connectionName })
        : new Redis(this.#url, { ...options, connectionName });
    const publisher = make("socketapi-publish");
    const subscriber = make("socketapi-subscribe");
    this.#publisher = publisher;
    this.#subscriber = subscriber;
    subscriber.on("message", (topic: string, message: string) => events.message(topic, message));
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
        // What the closed connection left unanswered fails now: ioredis would send it again
        // once connected (or, told not to, forget it unsettled), and a broadcast sent again
        // arrives after the ones made since, or twice when Redis ran it and only the
        // answer was lost.
        const error = new Error(`${this.name} closed the connection before answering`);
        for (let item = client.commandQueue.shift(); item; item = client.commandQueue.shift()) {
          item.command.reject(error);
        }
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

  async subscribe(topics: readonly string[]): Promise<void> {
    await this.#subscriber?.subscribe(...topics);
  }

  async unsubscribe(topic: string): Promise<void> {
    // A new connection starts without subscriptions: there is nothing to forget offline.
    if (this.#up) await this.#subscriber?.unsubscribe(topic);
  }

  publish(topic: string, message: string): Promise<unknown> {
    const publisher = this.#publisher;
    if (!publisher) return Promise.reject(new Error(`${this.name} is not connected`));
    return publisher.publish(topic, message);
  }

  async listeners(topics: readonly string[]): Promise<number[]> {
    if (!this.#publisher || topics.length === 0) return topics.map(() => 0);
    const reply = (await this.#publisher.pubsub("NUMSUB", ...topics)) as (string | number)[];
    return topics.map((_, i) => Number(reply[i * 2 + 1] ?? 0));
  }

  async topics(pattern: string): Promise<string[]> {
    return ((await this.#publisher?.pubsub("CHANNELS", pattern)) as string[] | undefined) ?? [];
  }

  async ping(): Promise<void> {
    // PING is one of the commands a subscribed connection may send.
    await Promise.all([this.#publisher?.ping(), this.#subscriber?.ping()]);
  }

  reconnect(): void {
    for (const client of [this.#publisher, this.#subscriber]) {
      if (!client) continue;
      // Reset, not ended: what was written and not yet sent (a partition holds it) is
      // thrown away, so that Redis never runs it late. ioredis connects again by itself;
      // what the connection left unanswered fails (see "close").
      const stream = client.stream as { resetAndDestroy?: () => void } | undefined;
      if (typeof stream?.resetAndDestroy === "function") stream.resetAndDestroy();
      else client.disconnect(true);
    }
  }

  async close(): Promise<void> {
    this.#up = false;
    await Promise.all(
      [this.#publisher, this.#subscriber].map((client) =>
        client?.quit().catch(() => client.disconnect()),
      ),
    );
  }
}
