import type { Connection, ConnectionState, ErrorInfo, UpgradeRequest } from "./context.ts";
import type { ActionTypes, ChannelTypes, Empty } from "./declare/api-types.ts";
import type { BroadcastOrigin } from "./declare/channel-handle.ts";
import { ChannelTemplate } from "./declare/channel-template.ts";
import type { ChannelDeclaration } from "./declare/declarations.ts";
import { Router } from "./declare/router.ts";
import type { AsyncApiDocument, AsyncApiOptions } from "./describe/asyncapi.ts";
import type { HistoryStore } from "./history/history.ts";
import { historyOf, presenceOf } from "./hub/app-view.ts";
import { checkedId, closeOf, type DisconnectOptions } from "./hub/disconnect.ts";
import { Hub } from "./hub/hub.ts";
import type { Relay } from "./hub/relay.ts";
import type { Target } from "./hub/target.ts";
import { Telemetry, type TelemetryOptions } from "./observe/telemetry.ts";
import type { PresenceCount } from "./presence/presence-registry.ts";
import { writeBytesInJson } from "./protocol/bytes.ts";
import type { Codec } from "./protocol/codec.ts";
import { dataFrame } from "./protocol/encode.ts";
import { SOCKETAPI_PROTOCOL } from "./protocol/protocol.ts";
import { type AdmissionRules, Admissions } from "./serve/admission.ts";
import { type AppInternals, registerApp } from "./serve/app-internals.ts";
import type { Credential, RefreshedCredential } from "./serve/credential.ts";
import { serveFrame } from "./serve/dispatch.ts";
import { type LimitOptions, type Limits, resolveLimits } from "./serve/limits.ts";
import type { RefreshHook } from "./serve/refresh.ts";
import { type ChannelMatch, Session } from "./serve/session.ts";
import { closeSessions } from "./serve/shutdown.ts";
import { isThenable } from "./thenable.ts";

export type { Admission, ConnectionSlot } from "./serve/admission.ts";

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
   * The binary codecs the app speaks besides JSON, for clients that offer their subprotocol
   * (`socketapi.msgpack` for `msgpack` of `socketapi/msgpack`). Default: none, JSON only.
   * A client that offers none of them is spoken to in JSON text, as always.
   *
   * @example
   * ```ts
   * import { SocketAPI } from "socketapi";
   * import { msgpack } from "socketapi/msgpack";
   *
   * const app = new SocketAPI({ codecs: [msgpack] });
   * ```
   */
  codecs?: readonly Codec[] | undefined;
  /**
   * Where channels declared with `history` keep it. Default: the relay's shared store when
   * it has one (socketapi/redis), else this process's memory.
   */
  history?: HistoryStore | undefined;
  /**
   * The user a connection belongs to (from its state, set by `onConnect`): what
   * `channels.x.toUser(id)` reaches, all of a person's tabs and devices. Default: none.
   */
  userId?: ((connection: Connection<State>) => string | undefined) | undefined;
  /**
   * Runs on every upgrade request before the socket is accepted. Return the connection's
   * initial state, or a `Response` (401, 403, ...) to refuse the upgrade with it. If it
   * throws, the upgrade is refused with 500 and the error goes to `onError`.
   * `credential.token` is the token the client offered (the typed client's `token` option
   * sends it in `Sec-WebSocket-Protocol`, off the URL); set `credential.expiresAt` to close
   * the connection when it expires, unless a `refresh` moved it (docs/connections.md).
   */
  onConnect?:
    | ((
        request: UpgradeRequest,
        credential: Credential,
      ) => State | Response | undefined | Promise<State | Response | undefined>)
    | undefined;
  /**
   * Takes a fresh credential over the open socket (a `refresh` frame, which the typed client
   * sends before its token expires): check `credential.token`, set `credential.expiresAt`
   * (unset: the connection no longer expires), and return the connection's new state, or
   * nothing to keep it. It may not change the user (`userId`): such a refresh is refused
   * with `FORBIDDEN`. Throw an `UnauthorizedError` to refuse the token: the connection keeps
   * the expiry it had. Without it, `refresh` frames are refused as unknown.
   *
   * @example
   * ```ts
   * const app = new SocketAPI({
   *   onConnect: (_, credential) => {
   *     credential.expiresAt = Date.now() + 15 * 60_000;
   *     return { user: "ada" };
   *   },
   *   onRefresh: (credential) => {
   *     if (credential.token !== "fresh") throw new UnauthorizedError("Token refused.");
   *     credential.expiresAt = Date.now() + 15 * 60_000;
   *   },
   * });
   * ```
   */
  onRefresh?:
    | ((
        credential: RefreshedCredential,
        connection: Connection<State>,
      ) => State | undefined | Promise<State | undefined>)
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
  /**
   * Where the app's metrics and spans go (docs/observability.md): OpenTelemetry's global
   * providers by default (a no-op until an SDK is set up, before the first connection),
   * these providers, or `false` for none.
   */
  telemetry?: TelemetryOptions | false | undefined;
}

export { DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_MESSAGE_BYTES } from "./serve/limits.ts";

const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** Any app, whatever its state and declarations: what adapters and the framework's parts take. */
// biome-ignore lint/suspicious/noExplicitAny: any app, whatever it declares.
export type AnyApp = SocketAPI<any, any, any>;

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
> extends Router<State, "", Actions, Channels, "app"> {
  /** Every limit of the app, from its options with defaults applied. */
  readonly limits: Limits;
  /** The binary codecs it speaks besides JSON (its `codecs` option). */
  readonly codecs: readonly Codec[];
  readonly #options: SocketAPIOptions<State>;
  readonly #hub: Hub;
  readonly #admissions: Admissions<State>;
  /** Failures a broadcast already reported: the action that awaited it does not again. */
  readonly #reportedBroadcastErrors = new WeakSet<object>();
  readonly #staticChannels = new Map<string, ChannelMatch>();
  readonly #templateChannels: ChannelMatch[] = [];
  readonly #telemetry: Telemetry;

  constructor(options: SocketAPIOptions<State> = {}) {
    super();
    this.#options = options;
    this.limits = resolveLimits(options);
    this.codecs = options.codecs ?? [];
    const report = (error: unknown, info: ErrorInfo): void => this.#reportError(error, info);
    this.#hub = new Hub(report, options.relay);
    this.#hub.presenceLeaveDelay = this.limits.presenceLeaveDelay;
    const telemetry = new Telemetry(options.telemetry ?? {});
    this.#telemetry = telemetry;
    this.#hub.telemetry = telemetry;
    telemetry.watchRelay(
      () => this.#hub.relay?.stats,
      () => this.#hub.relay?.health,
    );
    if (options.userId) {
      this.#hub.userOf = options.userId as (connection: Connection<object>) => string | undefined;
    }
    this.#admissions = new Admissions(
      options as AdmissionRules<State>,
      this.limits,
      report,
      (limit) => telemetry.refused(limit),
    );
    // What adapters reach through the kit (socketapi/adapter), kept out of this type; the
    // sessions' host too.
    const hub = this.#hub;
    const codecs = new Map(this.codecs.map((codec) => [codec.protocol, codec]));
    // Frames travel as JSON text first (between instances, in history): bytes must survive.
    if (codecs.size > 0) writeBytesInJson();
    const internals: AppInternals = {
      hub,
      limits: this.limits,
      admit: (request) => this.#admissions.admit(request, hub.connections.size),
      open: (socket, request, state, openOptions) => {
        const place = openOptions?.hub ?? hub;
        const session = new Session(internals, place, socket, request, state, openOptions?.id);
        openOptions?.slot?.release();
        place.connections.add(session);
        telemetry.connectionOpened();
        const protocol = openOptions?.protocol;
        const codec = protocol === undefined ? undefined : codecs.get(protocol);
        if (codec !== undefined) session.speak(codec);
        session.startExpiry(openOptions?.expiresAt, {
          timed: openOptions?.expiryTimer ?? true,
          // A client that speaks `socketapi` (in JSON or a codec) is told of its expiry.
          greet: !openOptions?.greeted && (protocol === SOCKETAPI_PROTOCOL || codec !== undefined),
        });
        return session;
      },
      findAction: (name) => this.actionDeclarations.get(name),
      findChannel: (name) => this.#findChannel(name),
      declarations: () => this.actionDeclarations.size + this.channelDeclarations.size,
      reportError: report,
      serveFrame,
      // Only the sessions `open` made are served, and closed, here.
      sessionClosed: (session, code, reason) =>
        this.#sessionClosed(session as Session<object>, code, reason),
      telemetry,
      onRefresh: options.onRefresh as RefreshHook | undefined,
    };
    registerApp(this, internals);
  }

  /** The open connections (of this process; on Workers, of the object a handler runs in). */
  get connections(): ReadonlySet<Connection<State>> {
    return this.#hub.connections as unknown as ReadonlySet<Connection<State>>;
  }

  /** How many connections here are subscribed to a concrete channel name (`rooms/42`). */
  subscriberCount(channel: string): number {
    return this.#hub.subscriberCount(channel);
  }

  /**
   * The app's AsyncAPI 3.0 document, built from its declarations: every action with its
   * input, output and errors, every channel with its address, parameters, subscribe-time
   * parameters and data, as JSON Schema from the valibot schemas (docs/asyncapi.md).
   *
   * @example
   * ```ts
   * const document = await app.asyncapi({ title: "Chat", version: "2.1.0" });
   * console.log(Object.keys(document.operations as object));
   * ```
   */
  async asyncapi(options?: AsyncApiOptions): Promise<AsyncApiDocument> {
    // Loaded when asked for: an app that never describes itself never loads the converter.
    const { buildAsyncApi } = await import("./describe/asyncapi.ts");
    return buildAsyncApi(
      {
        actions: this.actionDeclarations,
        channels: this.channelDeclarations,
        refreshes: this.#options.onRefresh !== undefined,
        codecs: this.codecs,
      },
      options,
    );
  }

  /**
   * Ends every session of a user (the app's `userId`) everywhere: on every instance over
   * the relay (Redis, NATS, `--workers`), on every shard on Workers; resolves to how many
   * connections were closed. For a ban or a changed password: the client's reconnect then
   * meets `onConnect`. Default close: 1008 `Disconnected by the server`. Instances that do
   * not answer within a second are not counted (their connections are still told).
   *
   * @example
   * ```ts
   * const closed = await app.disconnectUser("ada", { code: 4003, reason: "Banned" });
   * ```
   */
  async disconnectUser(userId: string, options?: DisconnectOptions): Promise<number> {
    return this.#hub.disconnect({ user: checkedId(userId) }, closeOf(options));
  }

  /**
   * Ends one connection by its id (`connection.id`) wherever it is; resolves to 1 if it was
   * closed, else 0. The same close as {@link disconnectUser}.
   *
   * @example
   * ```ts
   * await app.disconnectConnection(suspicious.id, { reason: "Flood" });
   * ```
   */
  async disconnectConnection(connectionId: string, options?: DisconnectOptions): Promise<number> {
    return this.#hub.disconnect({ connection: checkedId(connectionId) }, closeOf(options));
  }

  /**
   * How many connections are subscribed to a concrete channel name on every instance: the
   * relay (Redis, NATS) asks the other processes, each answers with its own count; on
   * Workers, every shard with subscribers of it answers. Without a relay, the same as
   * `subscriberCount`. Instances that do not answer within a second are not counted.
   *
   * @example
   * ```ts
   * const everywhere = await app.countSubscribers("rooms/42");
   * ```
   */
  countSubscribers(channel: string): Promise<number> {
    return this.#hub.countSubscribers(channel);
  }

  /**
   * The members of a channel with presence (a concrete name): each user (or connection,
   * without `userId`) subscribed, with the info it shows: on every instance with the Redis
   * relay or on Workers, else here (docs/presence.md). Handlers ask `ctx.app.presence`.
   *
   * @example
   * ```ts
   * const here = await app.presence("rooms/42"); // [{ user: "ada", info: { name: "Ada" } }]
   * ```
   */
  presence(channel: string): Promise<{ user: string; info: unknown }[]> {
    return presenceOf(this.#hub, channel);
  }

  /**
   * The last broadcasts a channel with history keeps (a concrete name), oldest first:
   * `last` of them, at most its history's `size` (docs/recovery.md). Handlers ask
   * `ctx.app.history`.
   *
   * @example
   * ```ts
   * const recent = await app.history("rooms/42", { last: 50 }); // [{ data, offset, epoch }]
   * ```
   */
  history(
    channel: string,
    options?: { readonly last?: number | undefined },
  ): Promise<{ data: unknown; offset: number; epoch: string }[]> {
    return historyOf(this.#hub, channel, options?.last);
  }

  /**
   * How many members a channel with presence has (a concrete name), and how many
   * connections they subscribed: on every instance with the Redis relay, else here.
   *
   * @example
   * ```ts
   * const { members, connections } = await app.presenceCount("rooms/42");
   * ```
   */
  async presenceCount(channel: string): Promise<PresenceCount> {
    return this.#hub.presence.count(channel);
  }

  /**
   * Sends `data` to every subscriber of a concrete channel name as it is, without running
   * the channel's handler or schemas; serialized once, and through the app's relay to its
   * other instances. Resolves with how many it reached. Prefer the channel handles
   * (`app.channels.chat(...)`), which validate.
   *
   * @example
   * ```ts
   * await app.publish("rooms/42", { text: "maintenance in 5 minutes" });
   * ```
   */
  publish(concreteName: string, data: unknown): number | Promise<number> {
    // The channel's template names its metrics and span: looked up only when they record.
    const template = this.#telemetry.recording
      ? (this.#findChannel(concreteName)?.template.name ?? concreteName)
      : concreteName;
    return this.#publishFrom(concreteName, data, undefined, undefined, template);
  }

  /**
   * Closes every open connection with 1001 (server shutting down) and resolves once they
   * have all closed, or after `timeout` ms (default 5000). Adapters' `close`/`shutdown`
   * close only the connections they accepted; this closes all of the app's.
   */
  closeConnections({ timeout = 5000 }: { timeout?: number | undefined } = {}): Promise<void> {
    return closeSessions(this.#hub.connections as Set<Session<object>>, timeout);
  }

  /**
   * Connects the app's relay, if it has one (the `relay` option): resolves once it can
   * carry broadcasts, rejects saying why it cannot (an unreachable broker, wrong
   * credentials). `serve` from socketapi/node awaits it before listening; on Bun and Deno,
   * await it before serving, to fail at start-up rather than at the first subscribe.
   *
   * @example
   * ```ts
   * const app = new SocketAPI({ relay: redisRelay("redis://127.0.0.1:6379") });
   * await app.ready();
   * export default bun(app);
   * ```
   */
  ready(): Promise<void> {
    return this.#hub.start();
  }

  /**
   * Stops the app's relay (its broker connections) after the app stopped serving. Without a
   * relay it does nothing. `close()` of socketapi/node's `serve` calls it.
   */
  async closeRelay(): Promise<void> {
    await this.#hub.close();
  }

  #publishFrom(
    concreteName: string,
    data: unknown,
    origin: BroadcastOrigin | undefined,
    target: Target | undefined,
    template: string,
  ): number | Promise<number> {
    const hub = origin?.hub ?? this.#hub;
    const ended = this.#telemetry.broadcast(template, concreteName);
    const delivered = hub.publish(concreteName, dataFrame(concreteName, data), target);
    if (!ended) return delivered;
    if (typeof delivered === "number") ended(delivered);
    else delivered.then(ended, () => ended(0));
    return delivered;
  }

  #findChannel(concreteName: string): ChannelMatch | undefined {
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
  #reportError(error: unknown, info: ErrorInfo): void {
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
    this.#reportError(error, info);
    if (typeof error === "object" && error !== null) this.#reportedBroadcastErrors.add(error);
  }

  #sessionClosed(session: Session<object>, code: number, reason: string): void {
    this.#telemetry.connectionClosed(code);
    const typed = session as unknown as Session<State>;
    session.hub.connections.delete(session);
    const id = session.knownId;
    if (id !== undefined) session.hub.unnamed(id, session);
    const { onDisconnect } = this.#options;
    if (!onDisconnect) return;
    const fail = (error: unknown): void =>
      this.#reportError(error, { connection: session, phase: "disconnect" });
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
      app: this.#hub.view,
      publish: (concrete, data, origin, target) =>
        this.#publishFrom(concrete, data, origin, target, template.name),
      reportError: (error, info) => this.#reportBroadcastError(error, info),
    });
    if (declaration.history && !this.#hub.history) {
      this.#hub.keepHistory(
        (concrete) => this.#findChannel(concrete)?.declaration.history,
        this.#options.history,
        { perPlace: this.limits.maxLingeringChannels, perConnection: this.limits.maxSubscriptions },
      );
    }
    const match: ChannelMatch = { declaration, template, nameParams: NO_PARAMS };
    if (template.isStatic) this.#staticChannels.set(name, match);
    else this.#templateChannels.push(match);
  }
}
