// The names of everything the Redis relay keeps and publishes on, for one Redis or for a
// Redis Cluster: on a cluster, every key and the shard channel of one app channel share a
// hash tag (the channel's name), so that each script touches one slot only.

/** What the instance-wide keys (heartbeats, claims) are tagged with on a cluster. */
const INSTANCES_TAG = "socketapi-instances";

/**
 * Names of keys and pub/sub channels, with the relay's prefix before each.
 *
 * On one Redis they are the prefix and the channel: `socketapi:history:rooms/42`. On a
 * cluster the channel is a hash tag, `socketapi:history:{rooms/42}`, so that a channel's
 * history stream, its metadata, its presence hashes and its shard channel live in the slot
 * the channel's name hashes to (CRC16, as Redis computes it): channels spread over the
 * shards as their names do. A name with `}` (which would end the tag early) is tagged
 * without its `}` and written in full after the tag: `socketapi:history:{ab}:a}b`.
 *
 * @example
 * ```ts
 * const names = new RedisNames("chat:", true);
 * names.topic("rooms/42"); // "chat:{rooms/42}"
 * names.key("history", "rooms/42"); // "chat:history:{rooms/42}"
 * ```
 */
export class RedisNames {
  readonly prefix: string;
  /** Whether names carry hash tags (a Redis Cluster). */
  readonly tagged: boolean;
  /** The command scripts publish with: sharded pub/sub on a cluster. */
  readonly publishCommand: "PUBLISH" | "SPUBLISH";

  constructor(prefix: string, tagged: boolean) {
    if (tagged && /[{}]/.test(prefix)) {
      throw new Error(
        `socketapi/redis: the prefix ${JSON.stringify(prefix)} has { or }: on a Redis Cluster ` +
          "they would make one hash tag of every channel, all of them in one slot.",
      );
    }
    this.prefix = prefix;
    this.tagged = tagged;
    this.publishCommand = tagged ? "SPUBLISH" : "PUBLISH";
  }

  /** The pub/sub channel (a shard channel, on a cluster) of an app channel. */
  topic(channel: string): string {
    return this.prefix + this.#tagged(channel);
  }

  /** The app channel of a pub/sub channel, or `undefined` when it is not one of the relay's. */
  channelOf(topic: string): string | undefined {
    if (!topic.startsWith(this.prefix)) return undefined;
    const name = topic.slice(this.prefix.length);
    if (!this.tagged) return name;
    if (!name.startsWith("{")) return undefined;
    const end = name.indexOf("}");
    if (end < 0) return undefined;
    // `{name}`, or `{tag}:name` for a name with `}`.
    return end === name.length - 1 ? name.slice(1, end) : name.slice(end + 2);
  }

  /** A key of one app channel: `history`, `history-meta`, `presence`, `presence-count`. */
  key(kind: string, channel: string): string {
    return `${this.prefix}${kind}:${this.#tagged(channel)}`;
  }

  /** What one instance contributes to the presence of `channel` (in the channel's slot). */
  contributions(channel: string, instance: string): string {
    return `${this.key("presence-conns", channel)}|${instance}`;
  }

  /** The channels an instance has presence contributions on (its own slot on a cluster). */
  instanceChannels(instance: string): string {
    return `${this.prefix}presence-channels:${this.tagged ? `{${instance}}` : instance}`;
  }

  /** The instances' heartbeats, a sorted set. */
  get alive(): string {
    return `${this.prefix}presence-alive${this.tagged ? `:{${INSTANCES_TAG}}` : ""}`;
  }

  /** Who counts out a silent instance's members: one instance at a time. */
  claim(instance: string): string {
    return `${this.alive}|claim|${instance}`;
  }

  /** `channel` as it goes into a name: on a cluster, a hash tag of it. */
  #tagged(channel: string): string {
    if (!this.tagged) return channel;
    if (!channel.includes("}")) return `{${channel}}`;
    // An empty tag would hash the whole name: never empty.
    return `{${channel.replaceAll("}", "") || "_"}}:${channel}`;
  }
}
