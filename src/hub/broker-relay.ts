/**
 * What every relay over a message broker does the same way, whatever the broker: the
 * channels this instance has subscribers of (its interest), restored when the broker comes
 * back; broadcasts handed over without waiting for the broker, within a bound; losses
 * counted and reported once per outage. A {@link BrokerLink} does the broker's part.
 *
 * @module
 */
import type { HistoryOptions, SharedHistoryStore } from "../history/history.ts";
import type { SharedPresenceStore } from "../presence/presence-registry.ts";
import { Census } from "./census.ts";
import type { DisconnectTarget } from "./disconnect.ts";
import { markLate } from "./late.ts";
import type { Relay, RelayHealth, RelayStats } from "./relay.ts";
import { markReported } from "./reported.ts";

/** What a link tells its relay of, as it happens. */
export interface LinkEvents {
  /** Another instance published `frame` on a topic this one subscribed to. */
  message(channel: string, frame: string): void;
  /** The connection to the broker was lost (it reconnects by itself). */
  down(error: unknown): void;
  /** The connection is back; the link may have to subscribe again. */
  up(): void;
  /**
   * Part of the broker failed while the rest works (a node of a cluster): what goes through
   * it may be lost until it recovers. The relay shows itself `degraded` meanwhile.
   */
  trouble?(error: unknown): void;
  /**
   * The link subscribed again by itself after part of the broker failed (a cluster's
   * client, after a failover or a slot move): broadcasts made meanwhile may have been missed.
   */
  resumed?(): void;
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
  /**
   * A command through the link failed or timed out (a broadcast, a history read, presence):
   * a link that routes commands (a cluster's) may ask the broker where things are now.
   */
  commandFailed?(error: unknown): void;
  /**
   * The instances on the same broker under other prefixes, where the broker can tell
   * (Redis): they never hear this app's broadcasts, nor it theirs. Told once at start.
   */
  otherPrefixes?(): Promise<{ readonly prefix: string; readonly instances: number }[]>;
  /**
   * Asks the broker something over every connection the link holds, and resolves once each
   * answered: the relay's heartbeat. It tells a link that no longer hears (a network
   * partition, a connection the broker closed while the network kept that from this side)
   * from one that is only quiet.
   */
  ping?(): Promise<void>;
  /** Drops the link's connections and makes them again: its heartbeat went unanswered. */
  reconnect?(): void;
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
  /**
   * How long any other command to the broker (a broadcast with history, a history read,
   * presence) may take before whoever waits for it goes on without it. Default 5000 ms. A
   * command that timed out still counts against `maxPendingBytes` until the broker answers
   * it: a stalled broker's connection keeps what was written to it.
   */
  commandTimeout?: number | undefined;
  /**
   * How often the relay pings the broker over each of its connections, in ms, where the
   * broker's link can (Redis on one server or through Sentinel). A ping unanswered for
   * {@link STALLED_MS} shows the relay `degraded`; one unanswered for `commandTimeout`
   * makes it drop its connections and connect again (reported once), so that a connection
   * that stopped hearing is not taken for a quiet one. Default 2000; `false` turns it off.
   */
  heartbeat?: number | false | undefined;
}

const DEFAULT_MAX_PENDING_BYTES = 8 * 1024 * 1024;

/** How long a relay shows itself `degraded` after the last trouble it saw. */
export const DEGRADED_MS = 5000;

/** How long a command may wait for the broker's answer before the relay shows itself `degraded`. */
export const STALLED_MS = 1000;
const DEFAULT_JOIN_TIMEOUT_MS = 5000;
const DEFAULT_COMMAND_TIMEOUT_MS = 5000;
const DEFAULT_HEARTBEAT_MS = 2000;

/** What a command to the broker is, for its accounting: a broadcast is lost when it fails. */
type CommandKind = "broadcast" | "read";

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
  readonly #commandTimeout: number;
  readonly #heartbeat: number | false;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  /** Whether a heartbeat's ping waits for its answer. */
  #beating = false;
  #history: SharedHistoryStore | undefined;
  #presence: SharedPresenceStore | undefined;
  /** The channels this instance has subscribers of. */
  readonly #interest = new Set<string>();
  readonly #counters: Counters = { published: 0, received: 0, lost: 0, disconnects: 0 };
  #report: (error: unknown) => void = () => {};
  /** Tells the hub the relay subscribed again after it could not deliver. */
  #resumed: () => void = () => {};
  #up = false;
  #closed = false;
  /** Whether the current outage (or stall) was reported already. */
  #lossReported = false;
  #pendingBytes = 0;
  /** Counting subscribers on every instance: asking, and answering. */
  readonly #census: Census;
  /** When each command still unanswered was sent, oldest first (a set keeps that order). */
  readonly #inFlight = new Set<{ readonly at: number }>();
  /** Since when the broker has been away (while it is), for {@link health}. */
  #downSince = 0;
  /** The trouble seen last while the broker was up, and when the run of troubles began. */
  #trouble: { reason: string; first: number; last: number } | undefined;

  constructor(link: BrokerLink, options: BrokerRelayOptions = {}) {
    this.#link = link;
    const listeners = link.listeners?.bind(link);
    this.#census = new Census({
      publish: (topic, text) => link.publish(topic, text),
      ...(listeners && { listeners }),
    });
    this.#maxPendingBytes = options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
    this.#joinTimeout = options.joinTimeout ?? DEFAULT_JOIN_TIMEOUT_MS;
    this.#commandTimeout = options.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.#heartbeat = options.heartbeat ?? DEFAULT_HEARTBEAT_MS;
  }

  get stats(): RelayStats {
    return { ...this.#counters, pendingBytes: this.#pendingBytes };
  }

  /**
   * `down` while the broker is unreachable; `degraded` while a command has waited for its
   * answer longer than {@link STALLED_MS}, while part of the broker fails, and for
   * {@link DEGRADED_MS} after a broadcast was lost or a command failed or timed out (also
   * while subscriptions are restored after an outage); else `ok`.
   */
  get health(): RelayHealth {
    if (this.#closed) return { status: "down", since: this.#downSince, reason: "closed" };
    if (!this.#up) {
      return {
        status: "down",
        since: this.#downSince,
        reason: `${this.#link.name} is unreachable`,
      };
    }
    const now = Date.now();
    // A broker that stops answering with its connections open (stalled, paused, a primary
    // about to be failed over) is no longer healthy, though nothing failed yet.
    const oldest = this.#inFlight.values().next().value;
    if (oldest && now - oldest.at > STALLED_MS) {
      return {
        status: "degraded",
        since: oldest.at + STALLED_MS,
        reason: `${this.#link.name} has not answered for ${now - oldest.at} ms`,
      };
    }
    const trouble = this.#trouble;
    if (trouble && now - trouble.last < DEGRADED_MS) {
      return { status: "degraded", since: trouble.first, reason: trouble.reason };
    }
    return { status: "ok", since: trouble ? trouble.last + DEGRADED_MS : this.#downSince };
  }

  /** Whether something went wrong within the last {@link DEGRADED_MS}. */
  #troubledLately(): boolean {
    return this.#trouble !== undefined && Date.now() - this.#trouble.last < DEGRADED_MS;
  }

  /** Something went wrong while the broker is up: the relay is degraded for a while. */
  #troubled(error: unknown): void {
    const now = Date.now();
    const reason = error instanceof Error ? error.message : String(error);
    const ongoing = this.#trouble && now - this.#trouble.last < DEGRADED_MS;
    this.#trouble = { reason, first: ongoing ? (this.#trouble?.first ?? now) : now, last: now };
  }

  /**
   * The link's history store, its commands under the relay's bounds: counted against
   * `maxPendingBytes` until the broker answers, waited for at most `commandTimeout`.
   */
  get history(): SharedHistoryStore | undefined {
    const store = this.#link.history;
    if (!store) return undefined;
    this.#history ??= {
      shared: true,
      publish: (channel, frame, options, except) =>
        this.#command(channel.length + frame.length, "broadcast", () =>
          store.publish(channel, frame, options, except),
        ),
      recover: (channel, since, options, maxBytes) =>
        this.#command(channel.length + COMMAND_BYTES, "read", () =>
          store.recover(channel, since, options, maxBytes),
        ),
      ...(store.latest && {
        latest: (channel: string, count: number, options: HistoryOptions) =>
          this.#command(channel.length + COMMAND_BYTES, "read", () =>
            (store.latest as NonNullable<SharedHistoryStore["latest"]>)(channel, count, options),
          ),
      }),
    };
    return this.#history;
  }

  /** The link's presence store, its commands under the relay's bounds (as {@link history}). */
  get presence(): SharedPresenceStore | undefined {
    const store = this.#link.presence;
    if (!store) return undefined;
    this.#presence ??= {
      join: (channel, member, info, frame, except, here) =>
        this.#command(
          channel.length + member.length + info.length + frame.length + COMMAND_BYTES,
          "broadcast",
          () => store.join(channel, member, info, frame, except, here),
        ),
      leave: (channel, member, frame, here) =>
        this.#command(channel.length + member.length + frame.length, "broadcast", () =>
          store.leave(channel, member, frame, here),
        ),
      members: (channel, limit, maxBytes) =>
        this.#command(channel.length + COMMAND_BYTES, "read", () =>
          store.members(channel, limit, maxBytes),
        ),
      count: (channel) =>
        this.#command(channel.length + COMMAND_BYTES, "read", () => store.count(channel)),
    };
    return this.#presence;
  }

  async open(
    receive: (channel: string, frame: string) => void,
    report: (error: unknown) => void,
    countHere: (channel: string) => number = () => 0,
    disconnectHere: (target: DisconnectTarget, code: number, reason: string) => number = () => 0,
    resumed: () => void = () => {},
  ): Promise<void> {
    this.#report = report;
    this.#resumed = resumed;
    const answers = { count: countHere, disconnect: disconnectHere };
    await this.#link.connect({
      message: (channel, frame) => {
        if (Census.owns(channel)) return this.#census.receive(channel, frame, answers);
        this.#counters.received++;
        receive(channel, frame);
      },
      down: (error) => this.#down(error),
      up: () => this.#restore(),
      trouble: (error) => {
        if (this.#up && !this.#closed) this.#troubled(error);
      },
      resumed: () => {
        if (this.#up && !this.#closed) this.#resumed();
      },
    });
    this.#up = true;
    this.#downSince = Date.now();
    await this.#link.subscribe(this.#census.topics);
    if (this.#heartbeat !== false && this.#heartbeat > 0 && this.#link.ping) {
      this.#heartbeatTimer = setInterval(() => this.#beat(), this.#heartbeat);
      (this.#heartbeatTimer as { unref?: () => void }).unref?.();
    }
    // Two instances of one app started with different prefixes never meet: say so.
    const others = await this.#link.otherPrefixes?.().catch(() => []);
    if (others && others.length > 0) {
      const listed = others
        .map(({ prefix, instances }) => `${JSON.stringify(prefix)} (${instances})`)
        .join(", ");
      report(
        new Error(
          `${this.#link.name} also has instances under other prefixes: ${listed}. ` +
            "Instances meet only under the same prefix (the relay's `prefix`, --prefix).",
        ),
      );
    }
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

  /** Closes the connections `target` names on the other instances; how many they closed. */
  async disconnect(target: DisconnectTarget, code: number, reason: string): Promise<number> {
    if (!this.#up) {
      throw new Error(
        `${this.#link.name} is unreachable: connections on other instances cannot be closed.`,
      );
    }
    return this.#census.disconnect(target, code, reason);
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
    if (this.#closed || this.#refusal(frame.length, "broadcast")) return undefined;
    this.#counters.published++;
    // Nobody waits for a plain broadcast: no timer, only the bound (it counts until taken).
    this.#send(frame.length, "broadcast", () => this.#link.publish(channel, frame), false).catch(
      () => {
        this.#counters.published--;
      },
    );
    return undefined;
  }

  /**
   * Hands the broker a command that carries `bytes`. It counts against `maxPendingBytes`
   * until the broker answers it, and is waited for at most `commandTimeout`. While the
   * broker is away, or when it would pass the bound, it is refused at once. A broadcast
   * that fails is counted in `lost`; a refusal, a time-out and a broadcast's failure are
   * told to the app once per outage (the error is marked so that nobody tells it again).
   */
  #command<T>(bytes: number, kind: CommandKind, run: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      return Promise.reject(markReported(new Error(`${this.#link.name}: the relay is closed.`)));
    }
    const refused = this.#refusal(bytes, kind);
    return refused ? Promise.reject(refused) : this.#send(bytes, kind, run);
  }

  /** Why a command cannot be sent now (counted, told once), or `undefined` when it can. */
  #refusal(bytes: number, kind: CommandKind): Error | undefined {
    if (!this.#up) return this.#failed(kind, this.#unreachable());
    if (this.#pendingBytes + bytes <= this.#maxPendingBytes) return undefined;
    return this.#failed(
      kind,
      new Error(
        `${this.#link.name} is not taking broadcasts as fast as they come ` +
          `(${this.#pendingBytes} bytes waiting): broadcasts to other instances are being lost.`,
      ),
    );
  }

  /**
   * Sends a command {@link #refusal} let through; with `waited`, whoever waits for it goes
   * on after `commandTimeout`.
   */
  #send<T>(bytes: number, kind: CommandKind, run: () => Promise<T>, waited = true): Promise<T> {
    this.#pendingBytes += bytes;
    const pending = { at: Date.now() };
    this.#inFlight.add(pending);
    let sent: Promise<T>;
    try {
      sent = run();
    } catch (error) {
      sent = Promise.reject(error);
    }
    const release = () => {
      this.#pendingBytes -= bytes;
      this.#inFlight.delete(pending);
    };
    sent.then(
      () => {
        release();
        // Taken again, and nothing failed for a while: a later stall or outage is reported
        // again (a cluster whose one shard fails while the others answer is told once).
        if (this.#up && !this.#troubledLately()) this.#lossReported = false;
      },
      () => {
        release();
        // A broadcast is lost when the broker fails it, also after whoever waited went on;
        // one the broker takes late (a stalled primary's command that its client sends
        // again to the new one) reached the others: it is not counted. Each counts, even
        // when the publishes of one turn share one failure.
        if (kind === "broadcast") this.#counters.lost++;
      },
    );
    if (!waited) {
      return sent.catch((error: unknown) => {
        throw this.#told(error);
      });
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    let late: Error | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        late = new Error(
          `${this.#link.name} did not answer within ${this.#commandTimeout} ms ` +
            "(stalled?): whoever waited goes on without it.",
        );
        reject(late);
      }, this.#commandTimeout);
      (timer as { unref?: () => void }).unref?.();
    });
    const stop = () => {
      if (timer !== undefined) clearTimeout(timer);
    };
    return Promise.race([sent, timedOut]).then(
      (value) => {
        stop();
        return value;
      },
      (error: unknown) => {
        stop();
        // The broker's own answer to a read is the caller's to tell.
        if (kind === "read" && error !== late) throw error;
        // How it ends is still to come: the broker may take it late.
        if (late && error === late) markLate(late, sent);
        // The outage (or the stall) is told once.
        throw this.#told(error);
      },
    );
  }

  /** A command refused before it was sent: counted if a broadcast, told once, marked. */
  #failed(kind: CommandKind, error: unknown): Error {
    if (kind === "broadcast") this.#counters.lost++;
    return this.#told(error);
  }

  /** A command that failed or is late: the relay shows it, tells it once, and marks it. */
  #told(error: unknown): Error {
    // Also while the broker is away: once back, the relay shows the loss for a while.
    this.#troubled(error);
    if (this.#up) this.#link.commandFailed?.(error);
    const told = this.#reportOutage(error);
    return markReported(error instanceof Error ? error : told);
  }

  #unreachable(): Error {
    return new Error(
      `${this.#link.name} is unreachable: broadcasts to and from other instances are lost ` +
        "until it is back (local subscribers still get theirs)",
    );
  }

  /**
   * Pings the broker unless a ping waits already. Unanswered, it shows in {@link health}
   * as a stalled command; unanswered for `commandTimeout`, the link connects again.
   */
  #beat(): void {
    const ping = this.#link.ping;
    if (!ping || !this.#up || this.#closed || this.#beating) return;
    this.#beating = true;
    const pending = { at: Date.now() };
    this.#inFlight.add(pending);
    const done = () => {
      clearTimeout(timer);
      this.#inFlight.delete(pending);
      this.#beating = false;
    };
    const timer = setTimeout(() => {
      done();
      if (!this.#up || this.#closed) return;
      const unanswered = new Error(
        `${this.#link.name} has not answered a ping for ${this.#commandTimeout} ms: ` +
          "connecting again (broadcasts from other instances are not heard meanwhile)",
      );
      this.#troubled(unanswered);
      this.#reportOutage(unanswered);
      this.#link.reconnect?.();
    }, this.#commandTimeout);
    (timer as { unref?: () => void }).unref?.();
    ping.call(this.#link).then(done, (error: unknown) => {
      done();
      if (this.#up && !this.#closed) this.#troubled(error);
    });
  }

  async close(): Promise<void> {
    if (this.#heartbeatTimer !== undefined) clearInterval(this.#heartbeatTimer);
    this.#closed = true;
    this.#up = false;
    this.#downSince = Date.now();
    await this.#link.close();
  }

  #down(error: unknown): void {
    if (this.#closed || !this.#up) return;
    this.#up = false;
    this.#downSince = Date.now();
    this.#counters.disconnects++;
    this.#reportOutage(error);
  }

  /** The broker is back: the interest is subscribed again (also what was joined meanwhile). */
  #restore(): void {
    if (this.#closed) return;
    this.#up = true;
    this.#lossReported = false;
    const restoring = `${this.#link.name} is back: subscribing again`;
    // What went wrong during the outage (broadcasts lost) still shows once subscribed again.
    const before = this.#trouble;
    this.#troubled(new Error(restoring));
    this.#link.subscribe([...this.#census.topics, ...this.#interest]).then(
      () => {
        // Subscribed again: degraded no longer, unless something else went wrong meanwhile.
        if (this.#trouble?.reason === restoring) this.#trouble = before;
        this.#resumed();
      },
      (error: unknown) => {
        const failure = this.#failure("could not subscribe again", error);
        this.#troubled(failure);
        this.#report(failure);
      },
    );
  }

  /**
   * Tells the app that broadcasts are being lost, once until the broker takes them again;
   * returns what it tells (or would have).
   */
  #reportOutage(error: unknown): Error {
    const told =
      error instanceof Error && error.message.startsWith(this.#link.name)
        ? error
        : this.#failure(
            this.#up
              ? "failed a command: broadcasts to other instances may be lost while it fails " +
                  "(counted in the relay's stats.lost; local subscribers still get theirs)"
              : "is unreachable: broadcasts to and from other instances are lost until it is " +
                  "back (local subscribers still get theirs)",
            error,
          );
    if (this.#lossReported) return told;
    this.#lossReported = true;
    this.#report(told);
    return told;
  }

  #failure(what: string, cause: unknown): Error {
    const reason = cause instanceof Error ? `: ${cause.message}` : "";
    return new Error(`${this.#link.name} ${what}${reason}`, { cause });
  }
}

/** What a command takes besides its channel and frame, counted against the bound. */
const COMMAND_BYTES = 64;

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
