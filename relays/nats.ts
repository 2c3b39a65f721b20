/**
 * Carries an app's broadcasts between its instances over NATS, with
 * `@nats-io/transport-node` (an optional dependency: `npm install @nats-io/transport-node`;
 * it runs on Node, Bun and Deno). Each instance subscribes only to the channels it has
 * subscribers of, and hears none of its own broadcasts (`noEcho`).
 *
 * @example
 * ```ts
 * import { SocketAPI } from "socketapi";
 * import { serve } from "socketapi/node";
 * import { natsRelay } from "socketapi/nats";
 *
 * const app = new SocketAPI({ relay: natsRelay("nats://127.0.0.1:4222") });
 * await serve(app, { port: 8000 }); // fails here, saying why, if NATS cannot be reached
 * ```
 *
 * @module
 */
import type { NatsConnection, NodeConnectionOptions, Subscription } from "@nats-io/transport-node";
import {
  type BrokerLink,
  BrokerRelay,
  type BrokerRelayOptions,
  errorMessage,
  type LinkEvents,
  loadOptional,
  redactedUrl,
} from "../src/adapter.ts";
import type { Relay } from "../src/index.ts";
import { subjectToken } from "./nats-subject.ts";

/** Options of {@link natsRelay}. */
export interface NatsRelayOptions extends BrokerRelayOptions {
  /**
   * The NATS server URL, `nats://[user:password@]host[:port]` (a token as the user part
   * alone), or several, tried in turn.
   */
  url?: string | readonly string[] | undefined;
  /**
   * The first token of every subject the relay uses (`socketapi.<channel>`), so that
   * several apps can share one NATS. Default `socketapi`.
   */
  prefix?: string | undefined;
  /** How long the first connection may take before start-up fails. Default 5000 ms. */
  connectTimeout?: number | undefined;
  /** More options of `@nats-io/transport-node`'s `connect` (TLS, credentials, ...). */
  nats?: Partial<NodeConnectionOptions> | undefined;
}

/**
 * A relay over NATS core pub/sub. The app connects it when it starts serving (`serve`
 * awaits it; elsewhere, `await app.ready()`): an unreachable server or wrong credentials
 * fail the start with the reason. Afterwards, when NATS goes away, local broadcasts keep
 * working, broadcasts to other instances are lost (counted in `stats.lost`, reported once
 * to the app's `onError`), and the client reconnects and subscribes again by itself.
 *
 * @example
 * ```ts
 * const relay = natsRelay({ url: ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"] });
 * const app = new SocketAPI({ relay });
 * ```
 */
export function natsRelay(options: string | NatsRelayOptions = {}): Relay {
  const resolved = typeof options === "string" ? { url: options } : options;
  return new BrokerRelay(new NatsLink(resolved), resolved);
}

class NatsLink implements BrokerLink {
  readonly name: string;
  readonly #servers: string[];
  readonly #prefix: string;
  readonly #options: NatsRelayOptions;
  readonly #subscriptions = new Map<string, Subscription>();
  #connection: NatsConnection | undefined;
  #events: LinkEvents | undefined;
  /** The flush that confirms the publishes made since the last one. */
  #flush: Promise<void> | undefined;

  constructor(options: NatsRelayOptions) {
    const url = options.url ?? "nats://127.0.0.1:4222";
    this.#servers = typeof url === "string" ? [url] : [...url];
    this.#prefix = options.prefix ?? "socketapi";
    this.#options = options;
    this.name = `NATS at ${this.#servers.map(redactedUrl).join(", ")}`;
  }

  async connect(events: LinkEvents): Promise<void> {
    const { connect } = await loadOptional<typeof import("@nats-io/transport-node")>(
      "@nats-io/transport-node",
      "socketapi/nats",
      () => import("@nats-io/transport-node"),
    );
    this.#events = events;
    try {
      this.#connection = await connect({
        servers: this.#servers,
        ...credentials(this.#servers[0] as string),
        name: "socketapi",
        // Its own broadcasts were delivered here already.
        noEcho: true,
        timeout: this.#options.connectTimeout ?? 5000,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        ...this.#options.nats,
      });
    } catch (error) {
      throw new Error(`socketapi/nats: cannot connect to ${this.name}: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    void this.#watch(this.#connection);
  }

  /** Tells the relay when the connection goes and comes back. */
  async #watch(connection: NatsConnection): Promise<void> {
    for await (const status of connection.status()) {
      if (status.type === "disconnect") {
        this.#events?.down(new Error(`${this.name} closed the connection`));
      } else if (status.type === "reconnect") this.#events?.up();
    }
  }

  async subscribe(channels: readonly string[]): Promise<void> {
    const connection = this.#connection;
    if (!connection) return;
    const failed: string[] = [];
    let cause: unknown;
    for (const channel of channels) {
      if (this.#subscriptions.has(channel)) continue;
      const subject = `${this.#prefix}.${subjectToken(channel)}`;
      const events = this.#events as LinkEvents;
      // One channel that cannot be subscribed stops none of the others (a restore after an
      // outage subscribes them all in one loop).
      try {
        this.#subscriptions.set(
          channel,
          connection.subscribe(subject, {
            callback: (error, message) => {
              if (!error) events.message(channel, message.string());
            },
          }),
        );
      } catch (error) {
        failed.push(channel);
        cause ??= error;
      }
    }
    // The server has the subscriptions once it answered a ping sent after them.
    await connection.flush();
    if (failed.length > 0) {
      throw new Error(
        `${this.name} refused the subscription to ${failed.length} channel(s), ` +
          `${failed
            .slice(0, 3)
            .map((name) => JSON.stringify(name))
            .join(", ")}: ${errorMessage(cause)}`,
        { cause },
      );
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    this.#subscriptions.get(channel)?.unsubscribe();
    this.#subscriptions.delete(channel);
  }

  publish(channel: string, frame: string): Promise<void> {
    const connection = this.#connection;
    if (!connection) return Promise.reject(new Error(`${this.name} is not connected`));
    try {
      connection.publish(`${this.#prefix}.${subjectToken(channel)}`, frame);
    } catch (error) {
      return Promise.reject(error);
    }
    // One ping for all the publishes of this turn: when it is answered, NATS has them all.
    this.#flush ??= Promise.resolve().then(() => {
      this.#flush = undefined;
      return connection.flush();
    });
    return this.#flush;
  }

  async close(): Promise<void> {
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection && !connection.isClosed()) await connection.close();
  }
}

/** The user and password, or token, a `nats://` URL carries. */
function credentials(url: string): { user?: string; pass?: string; token?: string } {
  try {
    const { username, password } = new URL(url);
    if (username && password) {
      return { user: decodeURIComponent(username), pass: decodeURIComponent(password) };
    }
    if (username) return { token: decodeURIComponent(username) };
  } catch {
    // Not a URL (host:port): no credentials in it.
  }
  return {};
}
