import type { ActionTypes, ChannelTypes, Empty } from "./api-types.ts";
import { ChannelTemplate } from "./channel-template.ts";
import type { Connection, ConnectionState, UpgradeRequest } from "./context.ts";
import type { ActionDeclaration, ChannelDeclaration } from "./declarations.ts";
import { type Hub, MemoryHub, type Subscriber } from "./hub.ts";
import { type RateLimit, resolveRateLimit } from "./rate-limiter.ts";
import { Router } from "./router.ts";
import { serializeData } from "./serialize.ts";
import {
  type ChannelMatch,
  type ErrorInfo,
  Session,
  type SessionHost,
  type SessionLimits,
} from "./session.ts";
import type { SocketLike } from "./socket.ts";
import { closeSessions } from "./web-socket.ts";

/** Why a connection ended. */
export interface DisconnectInfo {
  /** The WebSocket close code (1005 when none was given). */
  readonly code: number;
  /** The close reason, often empty. */
  readonly reason: string;
}

/** Options and hooks of a {@link SocketAPI} app. */
export interface SocketAPIOptions<State extends object> {
  /**
   * Runs on every upgrade request before the socket is accepted. Return the connection's
   * initial state, or a `Response` (401, 403, ...) to refuse the upgrade with it. If it
   * throws, the upgrade is refused with 500 and the error goes to `onError`.
   */
  onConnect?:
    | ((
        request: UpgradeRequest,
      ) => State | Response | undefined | Promise<State | Response | undefined>)
    | undefined;
  /** Runs when a connection has closed, after its subscriptions ended. */
  onDisconnect?:
    | ((connection: Connection<State>, info: DisconnectInfo) => void | Promise<void>)
    | undefined;
  /**
   * Receives every unexpected error: a handler that threw something other than a
   * `SocketAPIError`, a hook that failed, a send that failed. Default: `console.error`.
   */
  onError?: ((error: unknown, info: ErrorInfo) => void) | undefined;
  /** The largest text frame accepted, in bytes (default 1 MiB); larger ones get MESSAGE_TOO_LARGE. */
  maxMessageBytes?: number | undefined;
  /**
   * How many bytes may wait in one connection's send buffer (default 4 MiB). A client
   * that stops reading is closed with 1013 when its buffer passes this, and leaves its
   * channels, so that it never holds unbounded memory or slows the others.
   */
  maxBufferedBytes?: number | undefined;
  /**
   * How many frames each connection may send (a token bucket): default 1000 per second,
   * 1000 at once. Over it, frames are answered RATE_LIMITED; a client that keeps sending
   * is closed with 1008. `false` turns it off.
   */
  rateLimit?: RateLimit | false | undefined;
  /** How many frames of one connection may wait to be served (default 256); more are RATE_LIMITED. */
  maxQueuedMessages?: number | undefined;
  /** How many channels one connection may subscribe to (default 100); more are TOO_MANY_SUBSCRIPTIONS. */
  maxSubscriptions?: number | undefined;
  /** How many connections the app holds at once (default 10,000); more upgrades are refused with 503. */
  maxConnections?: number | undefined;
  /**
   * The origins a browser may connect from (the upgrade's `Origin` header), against
   * cross-site WebSocket hijacking: a list, or a function. Others are refused with 403
   * before `onConnect`. Requests without an `Origin` (not from a browser) are let through.
   * Default: every origin.
   */
  allowedOrigins?: readonly string[] | ((origin: string) => boolean) | undefined;
  /**
   * Seconds without a sign of life (a frame, a pong) after which a connection is taken for
   * dead and closed; adapters ping idle connections before that. Default 60.
   */
  idleTimeout?: number | undefined;
  /**
   * How many frames of one connection may be served at once (default 1: in arrival order,
   * each answered before the next starts). Above 1, answers may overtake each other and
   * clients match them by `id`.
   */
  concurrency?: number | undefined;
}

/** The outcome of `onConnect` for one upgrade request. */
/**
 * The outcome of `onConnect` for one upgrade request. `state` is `undefined` when
 * `onConnect` returned nothing: the connection then gets `{}` on first use.
 */
export type Admission<State> =
  | { ok: true; state: State | undefined }
  | { ok: false; response: Response };

/** The default largest frame: 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES: number = 1024 * 1024;

/** The default send buffer limit per connection: 4 MiB. */
export const DEFAULT_MAX_BUFFERED_BYTES: number = 4 * 1024 * 1024;

/** The admission of a connection that `onConnect` let in with no state of its own. */
const ACCEPTED = Object.freeze({ ok: true, state: undefined }) as { ok: true; state: undefined };

const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/**
 * A SocketAPI app: actions and channels served over one WebSocket per client. Declare them
 * in a chain so that `typeof app` carries their types; serve the app with an adapter
 * (`socketapi/node`, `socketapi/bun`, ...).
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { SocketAPI } from "socketapi";
 *
 * const app = new SocketAPI()
 *   .action("add_numbers", { input: v.object({ a: v.number(), b: v.number() }) },
 *     ({ a, b }) => a + b)
 *   .channel("chat", { params: v.object({ message: v.optional(v.string(), "Welcome") }) },
 *     ({ message }) => ({ message }))
 *   .action("send_message", { input: v.object({ message: v.string() }) },
 *     async ({ message }, ctx) => { await ctx.channels.chat({ message }); });
 * export default app;
 * ```
 */
export class SocketAPI<
    State extends object = ConnectionState,
    Actions extends ActionTypes = Empty,
    Channels extends ChannelTypes = Empty,
  >
  extends Router<State, "", Actions, Channels, "app">
  implements SessionHost
{
  /**
   * The subscriber index. In memory by default; an adapter may replace it with the
   * runtime's own pub/sub before the first connection.
   */
  hub: Hub = new MemoryHub();
  /** The largest text frame accepted, in bytes. */
  readonly maxMessageBytes: number;
  /** How many bytes may wait in one connection's send buffer. */
  readonly maxBufferedBytes: number;
  /** How many frames of one connection may be served at once. */
  readonly concurrency: number;
  /** The limits each connection is held to. */
  readonly limits: SessionLimits;
  /** Seconds without a sign of life before a connection is taken for dead. */
  readonly idleTimeout: number;
  /** How many connections the app holds at most. */
  readonly maxConnections: number;
  readonly #options: SocketAPIOptions<State>;
  readonly #sessions = new Set<Session<State>>();
  readonly #staticChannels = new Map<string, ChannelMatch>();
  readonly #templateChannels: ChannelMatch[] = [];

  constructor(options: SocketAPIOptions<State> = {}) {
    super();
    this.#options = options;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.concurrency = Math.max(1, options.concurrency ?? 1);
    this.limits = {
      rateLimit: resolveRateLimit(options.rateLimit),
      maxQueuedMessages: options.maxQueuedMessages ?? 256,
      maxSubscriptions: options.maxSubscriptions ?? 100,
    };
    this.idleTimeout = options.idleTimeout ?? 60;
    this.maxConnections = options.maxConnections ?? 10_000;
  }

  /** The open connections. */
  get connections(): ReadonlySet<Connection<State>> {
    return this.#sessions;
  }

  /**
   * Sends `data` to every subscriber of a concrete channel name as it is, without running
   * the channel's handler or schemas; serialized once. Returns how many it reached. Prefer
   * the channel handles (`app.channels.chat(...)`), which validate.
   */
  publish(concreteName: string, data: unknown, origin?: Subscriber): number | Promise<number> {
    return this.hub.publish(concreteName, serializeData(concreteName, data), origin);
  }

  /**
   * Runs the upgrade's checks (origin, connection limit) and `onConnect`. Adapters call it
   * before they accept the socket, and answer with `response` when the connection is
   * refused. Synchronous unless `onConnect` is async.
   */
  admit(request: UpgradeRequest): Admission<State> | Promise<Admission<State>> {
    // Only read when an allowlist is set: adapters may build `headers` on first use.
    const origin =
      this.#options.allowedOrigins === undefined ? null : request.headers.get("origin");
    if (origin !== null && !this.#originAllowed(origin)) {
      return { ok: false, response: new Response("Origin not allowed", { status: 403 }) };
    }
    if (this.#sessions.size >= this.maxConnections) {
      return { ok: false, response: new Response("Too many connections", { status: 503 }) };
    }
    const { onConnect } = this.#options;
    // Without onConnect (or with a synchronous one) the answer is immediate: upgrades
    // need no promise.
    if (!onConnect) return ACCEPTED;
    let outcome: ReturnType<typeof onConnect>;
    try {
      outcome = onConnect(request);
    } catch (error) {
      return this.#connectFailed(error);
    }
    if (outcome instanceof Promise) {
      return outcome.then(
        (settled) => this.#admission(settled),
        (error: unknown) => this.#connectFailed(error),
      );
    }
    return this.#admission(outcome);
  }

  #admission(outcome: State | Response | undefined): Admission<State> {
    if (outcome instanceof Response) return { ok: false, response: outcome };
    return outcome === undefined ? ACCEPTED : { ok: true, state: outcome };
  }

  #connectFailed(error: unknown): Admission<State> {
    this.reportError(error, { phase: "connect" });
    return { ok: false, response: new Response("Internal Server Error", { status: 500 }) };
  }

  /**
   * Starts serving an accepted socket. Adapters feed the returned session its events.
   * `options.id` restores a connection's id (a Durable Object waking from hibernation).
   */
  open(
    socket: SocketLike,
    request: UpgradeRequest,
    state: State | undefined,
    options?: { id?: string | undefined },
  ): Session<State> {
    const session = new Session(this, socket, request, state, options?.id);
    this.#sessions.add(session);
    return session;
  }

  /**
   * Closes every open connection with 1001 (server shutting down) and resolves once they
   * have all closed, or after `timeout` ms (default 5000). Adapters' `close`/`shutdown`
   * close only the connections they accepted; this closes all of the app's.
   */
  closeConnections({ timeout = 5000 }: { timeout?: number | undefined } = {}): Promise<void> {
    return closeSessions(this.#sessions, timeout);
  }

  #originAllowed(origin: string): boolean {
    const allowed = this.#options.allowedOrigins;
    if (allowed === undefined) return true;
    return typeof allowed === "function" ? allowed(origin) : allowed.includes(origin);
  }

  findAction(name: string): ActionDeclaration | undefined {
    return this.actionDeclarations.get(name);
  }

  findChannel(concreteName: string): ChannelMatch | undefined {
    const exact = this.#staticChannels.get(concreteName);
    if (exact) return exact;
    for (const candidate of this.#templateChannels) {
      const nameParams = candidate.template.match(concreteName);
      if (nameParams) return { ...candidate, nameParams };
    }
    return undefined;
  }

  reportError(error: unknown, info: ErrorInfo): void {
    try {
      if (this.#options.onError) this.#options.onError(error, info);
      else console.error(`[socketapi] unexpected error (${info.phase})`, error);
    } catch (hookError) {
      console.error("[socketapi] onError threw", hookError);
    }
  }

  sessionClosed(session: Session<object>, code: number, reason: string): void {
    const typed = session as unknown as Session<State>;
    this.#sessions.delete(typed);
    const { onDisconnect } = this.#options;
    if (!onDisconnect) return;
    const fail = (error: unknown): void =>
      this.reportError(error, { connection: session, phase: "disconnect" });
    try {
      const pending = onDisconnect(typed, { code, reason });
      if (pending) pending.catch(fail);
    } catch (error) {
      fail(error);
    }
  }

  protected override adoptChannel(name: string, declaration: ChannelDeclaration): void {
    super.adoptChannel(name, declaration);
    const template =
      name === declaration.template.name ? declaration.template : new ChannelTemplate(name);
    declaration.mounts.push({
      template,
      publish: (concrete, data, origin) => this.publish(concrete, data, origin),
    });
    const match: ChannelMatch = { declaration, template, nameParams: NO_PARAMS };
    if (template.isStatic) this.#staticChannels.set(name, match);
    else this.#templateChannels.push(match);
  }
}
