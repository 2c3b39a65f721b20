import type { Connection, ConnectionState, ErrorInfo, UpgradeRequest } from "./context.ts";
import type { ActionTypes, ChannelTypes, Empty } from "./declare/api-types.ts";
import type { BroadcastOrigin } from "./declare/channel-handle.ts";
import { ChannelTemplate } from "./declare/channel-template.ts";
import type { ActionDeclaration, ChannelDeclaration } from "./declare/declarations.ts";
import { Router } from "./declare/router.ts";
import { Hub } from "./hub/hub.ts";
import type { Relay } from "./hub/relay.ts";
import { dataFrame } from "./protocol/encode.ts";
import { type LimitOptions, type Limits, resolveLimits } from "./serve/limits.ts";
import { type ChannelMatch, Session, type SessionHost } from "./serve/session.ts";
import type { SocketLike } from "./serve/socket.ts";
import { closeSessions } from "./serve/websocket.ts";
import { isThenable } from "./thenable.ts";

/** Why a connection ended. */
export interface DisconnectInfo {
  /** The WebSocket close code (1005 when none was given). */
  readonly code: number;
  /** The close reason, often empty. */
  readonly reason: string;
}

/** Options and hooks of a {@link SocketAPI} app. */
export interface SocketAPIOptions<State extends object> extends LimitOptions {
  /**
   * Carries broadcasts to the app's other instances (processes, machines): each instance
   * hears only the channels it has subscribers of. Default: none, one process.
   */
  relay?: Relay | undefined;
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
  /**
   * The origins a browser may connect from (the upgrade's `Origin` header), against
   * cross-site WebSocket hijacking: a list, or a function. Others are refused with 403
   * before `onConnect`. Requests without an `Origin` (not from a browser) are let through.
   * Default: every origin.
   */
  allowedOrigins?: readonly string[] | ((origin: string) => boolean) | undefined;
}

/**
 * A place among the app's `maxConnections`, held from the moment an upgrade is admitted
 * until its socket opens (`open` takes it over) or the adapter gives up on it.
 */
export interface ConnectionSlot {
  /** Gives the place back: the upgrade will not become a connection. Idempotent. */
  release(): void;
}

/**
 * The outcome of `onConnect` for one upgrade request. `state` is `undefined` when
 * `onConnect` returned nothing: the connection then gets `{}` on first use. An admitted
 * upgrade holds a `slot` until `open` takes it, or the adapter releases it.
 */
export type Admission<State> =
  | { ok: true; state: State | undefined; slot: ConnectionSlot }
  | { ok: false; response: Response };

export { DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_MESSAGE_BYTES } from "./serve/limits.ts";

/** A slot never opened nor released (an adapter lost the upgrade) stops counting after this. */
const SLOT_LIFETIME_MS = 60_000;

class Slot implements ConnectionSlot {
  readonly taken = Date.now();
  readonly #slots: Set<Slot>;

  constructor(slots: Set<Slot>) {
    this.#slots = slots;
    slots.add(this);
  }

  release(): void {
    this.#slots.delete(this);
  }
}

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
  readonly hub: Hub;
  /** Every limit of the app, from its options with defaults applied. */
  readonly limits: Limits;
  readonly #options: SocketAPIOptions<State>;
  /** Upgrades admitted whose sockets have not opened yet: they count as connections. */
  readonly #slots = new Set<Slot>();
  /** Failures a broadcast already reported: the action that awaited it does not again. */
  readonly #reportedBroadcastErrors = new WeakSet<object>();
  #warnedAboutCookies = false;
  readonly #staticChannels = new Map<string, ChannelMatch>();
  readonly #templateChannels: ChannelMatch[] = [];

  constructor(options: SocketAPIOptions<State> = {}) {
    super();
    this.#options = options;
    this.limits = resolveLimits(options);
    this.hub = new Hub((error, info) => this.reportError(error, info), options.relay);
  }

  /** The open connections. */
  get connections(): ReadonlySet<Connection<State>> {
    return this.hub.connections as unknown as ReadonlySet<Connection<State>>;
  }

  /** How many connections here are subscribed to a concrete channel name (`rooms/42`). */
  subscriberCount(channel: string): number {
    return this.hub.subscriberCount(channel);
  }

  /**
   * Sends `data` to every subscriber of a concrete channel name as it is, without running
   * the channel's handler or schemas; serialized once. Returns how many it reached. Prefer
   * the channel handles (`app.channels.chat(...)`), which validate.
   */
  publish(concreteName: string, data: unknown, origin?: BroadcastOrigin): number | Promise<number> {
    return (origin?.hub ?? this.hub).publish(concreteName, dataFrame(concreteName, data));
  }

  /**
   * Runs the upgrade's checks (origin, connection limit) and `onConnect`. Adapters call it
   * before they accept the socket, and answer with `response` when the connection is
   * refused; an admitted upgrade holds a place among `maxConnections` (its `slot`) until
   * `open` takes it or the adapter releases it, so that upgrades waiting for an async
   * `onConnect` cannot overshoot the limit. Synchronous unless `onConnect` is async; never
   * throws.
   */
  admit(request: UpgradeRequest): Admission<State> | Promise<Admission<State>> {
    try {
      // Only read when an allowlist is set: adapters may build `headers` on first use.
      const origin =
        this.#options.allowedOrigins === undefined ? null : request.headers.get("origin");
      if (origin !== null && !this.#originAllowed(origin)) {
        return { ok: false, response: new Response("Origin not allowed", { status: 403 }) };
      }
      if (this.#connectionCount() >= this.limits.maxConnections) {
        return { ok: false, response: new Response("Too many connections", { status: 503 }) };
      }
      const slot = new Slot(this.#slots);
      const { onConnect } = this.#options;
      // Without onConnect (or with a synchronous one) the answer is immediate: upgrades
      // need no promise.
      if (!onConnect) return { ok: true, state: undefined, slot };
      let outcome: unknown;
      try {
        outcome = onConnect(this.#watchedForCookies(request));
        if (isThenable(outcome)) {
          return Promise.resolve(outcome).then(
            (settled) => this.#admission(settled, slot),
            (error: unknown) => this.#connectFailed(error, slot),
          );
        }
      } catch (error) {
        return this.#connectFailed(error, slot);
      }
      return this.#admission(outcome, slot);
    } catch (error) {
      return this.#connectFailed(error, undefined);
    }
  }

  /** Open connections and admitted upgrades not yet open, forgetting slots an adapter lost. */
  #connectionCount(): number {
    if (this.#slots.size > 0) {
      const stale = Date.now() - SLOT_LIFETIME_MS;
      for (const slot of this.#slots) if (slot.taken < stale) slot.release();
    }
    return this.hub.connections.size + this.#slots.size;
  }

  #admission(outcome: unknown, slot: Slot): Admission<State> {
    try {
      if (outcome instanceof Response) {
        slot.release();
        return { ok: false, response: outcome };
      }
    } catch (error) {
      return this.#connectFailed(error, slot);
    }
    return { ok: true, state: (outcome ?? undefined) as State | undefined, slot };
  }

  #connectFailed(error: unknown, slot: Slot | undefined): Admission<State> {
    slot?.release();
    this.reportError(error, { phase: "connect" });
    return { ok: false, response: new Response("Internal Server Error", { status: 500 }) };
  }

  /**
   * The request `onConnect` sees. While no `allowedOrigins` is set, its headers are
   * watched until `onConnect` first reads `Cookie`: then any web page could open a
   * connection with the user's cookies (cross-site WebSocket hijacking), and the app is
   * told so once, loudly.
   */
  #watchedForCookies(request: UpgradeRequest): UpgradeRequest {
    if (this.#options.allowedOrigins !== undefined || this.#warnedAboutCookies) return request;
    const warn = (): void => {
      if (this.#warnedAboutCookies) return;
      this.#warnedAboutCookies = true;
      console.warn(
        "[socketapi] onConnect reads cookies, but allowedOrigins is not set: any web page the " +
          "user visits can open a connection that carries the user's cookies (cross-site " +
          "WebSocket hijacking). Set allowedOrigins to the origins of your pages; see " +
          "docs/security.md.",
      );
    };
    let headers: Headers | undefined;
    return {
      get url() {
        return request.url;
      },
      get headers() {
        headers ??= new Proxy(request.headers, {
          get(target, key) {
            const value = Reflect.get(target, key, target);
            if (typeof value !== "function") return value;
            if (key === "get" || key === "has" || key === "getSetCookie") {
              return (name: string) => {
                if (String(name).toLowerCase() === "cookie") warn();
                return value.call(target, name);
              };
            }
            return value.bind(target);
          },
        });
        return headers;
      },
    };
  }

  /**
   * Starts serving an accepted socket. Adapters feed the returned session its events.
   * `options.slot` is the admission's place, taken over by the connection; `options.id`
   * restores a connection's id (a Durable Object waking from hibernation).
   */
  open(
    socket: SocketLike,
    request: UpgradeRequest,
    state: State | undefined,
    options?: {
      id?: string | undefined;
      slot?: ConnectionSlot | undefined;
      hub?: Hub | undefined;
    },
  ): Session<State> {
    const session = new Session(
      this,
      options?.hub ?? this.hub,
      socket,
      request,
      state,
      options?.id,
    );
    options?.slot?.release();
    session.hub.connections.add(session);
    return session;
  }

  /**
   * Closes every open connection with 1001 (server shutting down) and resolves once they
   * have all closed, or after `timeout` ms (default 5000). Adapters' `close`/`shutdown`
   * close only the connections they accepted; this closes all of the app's.
   */
  closeConnections({ timeout = 5000 }: { timeout?: number | undefined } = {}): Promise<void> {
    return closeSessions(this.hub.connections as Set<Session<object>>, timeout);
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

  /**
   * Tells the app's `onError` (default: `console.error`) of an unexpected error. Never
   * throws, whatever the error or the hook does.
   */
  reportError(error: unknown, info: ErrorInfo): void {
    if (typeof error === "object" && error !== null && this.#reportedBroadcastErrors.has(error)) {
      // Already reported by the broadcast that failed inside this handler.
      this.#reportedBroadcastErrors.delete(error);
      return;
    }
    try {
      if (this.#options.onError) this.#options.onError(error, info);
      else console.error(`[socketapi] unexpected error (${info.phase})`, error);
    } catch (hookError) {
      try {
        console.error("[socketapi] onError threw", hookError);
      } catch {
        // Nowhere left to tell.
      }
    }
  }

  /** Reports a failed broadcast, once even when the handler that awaited it fails too. */
  #reportBroadcastError(error: unknown, info: ErrorInfo): void {
    this.reportError(error, info);
    if (typeof error === "object" && error !== null) this.#reportedBroadcastErrors.add(error);
  }

  sessionClosed(session: Session<object>, code: number, reason: string): void {
    const typed = session as unknown as Session<State>;
    session.hub.connections.delete(typed);
    const { onDisconnect } = this.#options;
    if (!onDisconnect) return;
    const fail = (error: unknown): void =>
      this.reportError(error, { connection: session, phase: "disconnect" });
    try {
      const pending = onDisconnect(typed, { code, reason });
      if (isThenable(pending)) Promise.resolve(pending).catch(fail);
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
      app: this.hub,
      publish: (concrete, data, origin) => this.publish(concrete, data, origin),
      reportError: (error, info) => this.#reportBroadcastError(error, info),
    });
    const match: ChannelMatch = { declaration, template, nameParams: NO_PARAMS };
    if (template.isStatic) this.#staticChannels.set(name, match);
    else this.#templateChannels.push(match);
  }
}
