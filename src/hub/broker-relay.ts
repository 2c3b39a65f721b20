/**
 * What every relay over a message broker does the same way, whatever the broker: the
 * channels this instance has subscribers of (its interest), restored when the broker comes
 * back; broadcasts handed over without waiting for the broker, within a bound; losses
 * counted and reported once per outage. A {@link BrokerLink} does the broker's part.
 *
 * @module
 */
import type { SharedHistoryStore } from "../history/history.ts";
import type { SharedPresenceStore } from "../presence/presence-registry.ts";
import { Census } from "./census.ts";
import type { Relay, RelayStats } from "./relay.ts";

/** What a link tells its relay of, as it happens. */
export interface LinkEvents {
  /** Another instance published `frame` on a topic this one subscribed to. */
  message(channel: string, frame: string): void;
  /** The connection to the broker was lost (it reconnects by itself). */
  down(error: unknown): void;
  /** The connection is back; the link may have to subscribe again. */
  up(): void;
}

/** One broker's client, as a relay uses it: channels, not the broker's topic names. */
export interface BrokerLink {
  /** The broker, for messages: `Redis at redis://127.0.0.1:6379`, without credentials. */
  readonly name: string;
  /** Connects; rejects saying why it cannot (unreachable, wrong credentials, too slow). */
  connect(events: LinkEvents): Promise<void>;
  /**
   * Subscribes to these channels (those it has already are kept); resolves once the broker
   * has the subscriptions.
   */
  subscribe(channels: readonly string[]): Promise<void>;
  /** Drops the subscription; while disconnected, at least forgets it. */
  unsubscribe(channel: string): Promise<void>;
  /** Publishes; resolves once the broker took it, rejects when it cannot. */
  publish(channel: string, frame: string): Promise<void>;
  close(): Promise<void>;
  /** A history store every instance shares, where the broker keeps one. */
  readonly history?: SharedHistoryStore | undefined;
  /** Presence every instance shares, where the broker keeps it. */
  readonly presence?: SharedPresenceStore | undefined;
  /**
   * How many connections to the broker hear `channel` (Redis: `PUBSUB NUMSUB`), so that a
   * count of subscribers knows how many answers to wait for; without it, the count waits
   * until the answers stop coming.
   */
  listeners?(channel: string): Promise<number>;
}

/** Options every broker relay has. */
export interface BrokerRelayOptions {
  /**
   * How many bytes of broadcasts may wait for the broker to take them; more are lost
   * (counted and reported) rather than held. Default 8 MiB.
   */
  maxPendingBytes?: number | undefined;
  /**
   * How long a subscribe waits for the broker to confirm the interest before the client is
   * told `subscribed` anyway (local broadcasts reach it at once; the interest is kept and
   * restored). Default 5000 ms.
   */
  joinTimeout?: number | undefined;
}

const DEFAULT_MAX_PENDING_BYTES = 8 * 1024 * 1024;
const DEFAULT_JOIN_TIMEOUT_MS = 5000;

/** Counters of a relay, mutable inside it. */
interface Counters {
  published: number;
  received: number;
  lost: number;
  disconnects: number;
}

/**
 * A {@link Relay} over a broker link.
 *
 * @example
 * ```ts
 * import { BrokerRelay } from "socketapi/adapter";
 *
 * // `link` speaks to the broker: see socketapi/redis and socketapi/nats.
 * const relay = new BrokerRelay(link, { maxPendingBytes: 1024 * 1024 });
 * ```
 */
export class BrokerRelay implements Relay {
  readonly #link: BrokerLink;
  readonly #maxPendingBytes: number;
  readonly #joinTimeout: number;
  /** The channels this instance has subscribers of. */
  readonly #interest = new Set<string>();
  readonly #counters: Counters = { published: 0, received: 0, lost: 0, disconnects: 0 };
  #report: (error: unknown) => void = () => {};
  #up = false;
  #closed = false;
  /** Whether the current outage (or stall) was reported already. */
  #lossReported = false;
  #pendingBytes = 0;
  /** Counting subscribers on every instance: asking, and answering. */
  readonly #census: Census;

  constructor(link: BrokerLink, options: BrokerRelayOptions = {}) {
    this.#link = link;
    const listeners = link.listeners?.bind(link);
    this.#census = new Census({
      publish: (topic, text) => link.publish(topic, text),
      ...(listeners && { listeners }),
    });
    this.#maxPendingBytes = options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
    this.#joinTimeout = options.joinTimeout ?? DEFAULT_JOIN_TIMEOUT_MS;
  }

  get stats(): RelayStats {
    return { ...this.#counters };
  }

  get history(): SharedHistoryStore | undefined {
    return this.#link.history;
  }

  get presence(): SharedPresenceStore | undefined {
    return this.#link.presence;
  }

  async open(
    receive: (channel: string, frame: string) => void,
    report: (error: unknown) => void,
    countHere: (channel: string) => number = () => 0,
  ): Promise<void> {
    this.#report = report;
    await this.#link.connect({
      message: (channel, frame) => {
        if (Census.owns(channel)) return this.#census.receive(channel, frame, countHere);
        this.#counters.received++;
        receive(channel, frame);
      },
      down: (error) => this.#down(error),
      up: () => this.#restore(),
    });
    this.#up = true;
    await this.#link.subscribe(this.#census.topics);
  }

  /** How many connections are subscribed to `channel` on the other instances. */
  async countSubscribers(channel: string): Promise<number> {
    if (!this.#up) {
      throw new Error(
        `${this.#link.name} is unreachable: subscribers on other instances cannot be counted.`,
      );
    }
    return this.#census.count(channel);
  }

  async join(channel: string): Promise<void> {
    this.#interest.add(channel);
    // While the broker is away the interest is only kept: it is restored when it comes back.
    if (!this.#up) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), this.#joinTimeout);
    });
    try {
      const joined = await Promise.race([this.#link.subscribe([channel]), timeout]);
      if (joined === "timeout") {
        throw new Error(
          `${this.#link.name} did not confirm the subscription to ${JSON.stringify(channel)} ` +
            `within ${this.#joinTimeout} ms: broadcasts from other instances may miss it until it does.`,
        );
      }
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  async leave(channel: string): Promise<void> {
    this.#interest.delete(channel);
    const left = this.#link.unsubscribe(channel);
    // While the broker is away, the link forgets it: it is not restored.
    if (this.#up) await left;
    else left.catch(() => {});
  }

  publish(channel: string, frame: string): undefined {
    if (this.#closed) return undefined;
    if (!this.#up) {
      this.#lose(undefined);
      return undefined;
    }
    const size = frame.length;
    if (this.#pendingBytes + size > this.#maxPendingBytes) {
      this.#lose(
        new Error(
          `${this.#link.name} is not taking broadcasts as fast as they come ` +
            `(${this.#pendingBytes} bytes waiting): broadcasts to other instances are being lost.`,
        ),
      );
      return undefined;
    }
    this.#pendingBytes += size;
    this.#counters.published++;
    this.#link.publish(channel, frame).then(
      () => {
        this.#pendingBytes -= size;
        // Taken again: a later stall or outage is reported again.
        if (this.#up) this.#lossReported = false;
      },
      (error: unknown) => {
        this.#pendingBytes -= size;
        this.#counters.published--;
        this.#lose(error);
      },
    );
    return undefined;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#up = false;
    await this.#link.close();
  }

  #down(error: unknown): void {
    if (this.#closed || !this.#up) return;
    this.#up = false;
    this.#counters.disconnects++;
    this.#reportOutage(error);
  }

  /** The broker is back: the interest is subscribed again (also what was joined meanwhile). */
  #restore(): void {
    if (this.#closed) return;
    this.#up = true;
    this.#lossReported = false;
    this.#link
      .subscribe([...this.#census.topics, ...this.#interest])
      .catch((error: unknown) => this.#report(this.#failure("could not subscribe again", error)));
  }

  /** A broadcast the other instances will not get: counted, and reported once per outage. */
  #lose(error: unknown): void {
    this.#counters.lost++;
    this.#reportOutage(error);
  }

  /** Tells the app that broadcasts are being lost, once until the broker takes them again. */
  #reportOutage(error: unknown): void {
    if (this.#lossReported) return;
    this.#lossReported = true;
    this.#report(
      error instanceof Error && error.message.startsWith(this.#link.name)
        ? error
        : this.#failure(
            "is unreachable: broadcasts to and from other instances are lost until it is back " +
              "(local subscribers still get theirs)",
            error,
          ),
    );
  }

  #failure(what: string, cause: unknown): Error {
    const reason = cause instanceof Error ? `: ${cause.message}` : "";
    return new Error(`${this.#link.name} ${what}${reason}`, { cause });
  }
}

/** A broker's URL without its password, for messages and logs. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.href.replace(/\/$/, "");
  } catch {
    return url.replace(/\/\/[^@/]*@/, "//***@");
  }
}

/** An error's message, or the thrown value as text. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
