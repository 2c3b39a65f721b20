import type { UpgradeRequest } from "../context.ts";
import type { Hub } from "../hub/hub.ts";
import type { Admission, ConnectionSlot } from "./admission.ts";
import type { Session, SessionHost } from "./session.ts";
import type { SocketLike } from "./socket.ts";

/** How an adapter opens a connection: see {@link openConnection}. */
export interface OpenOptions {
  /** Restores a connection's id (a Durable Object waking from hibernation). */
  id?: string | undefined;
  /** The admission's place among `maxConnections`, taken over by the connection. */
  slot?: ConnectionSlot | undefined;
  /** The hub of the place that holds the connection; default the app's own. */
  hub?: Hub | undefined;
  /** When its credential expires (the admission's `expiresAt`): closed with 4001 then. */
  expiresAt?: number | undefined;
  /**
   * The subprotocol the socket was accepted with (the admission's `protocol`): a client that
   * speaks `socketapi` is told its expiry in an `expiry` frame, and one that offered a
   * codec's (`socketapi.msgpack`) is spoken to in it.
   */
  protocol?: string | undefined;
  /** When restoring a connection that was told its expiry already: not again. */
  greeted?: boolean | undefined;
  /**
   * Whether the expiry keeps a timer (default `true`). `false` where timers do not outlive
   * hibernation: the adapter wakes for the expiry itself (the keeper's `expiryChanged`)
   * and calls the session's `expireIfDue`.
   */
  expiryTimer?: boolean | undefined;
}

/**
 * What adapters reach of an app, kept out of its public type: the app's users see
 * declarations, handles, connections and limits; adapters see these through the kit's
 * functions.
 */
export interface AppInternals extends SessionHost {
  /** The app's own hub: its connections, subscribers and relay. */
  readonly hub: Hub;
  admit(request: UpgradeRequest): Admission<object> | Promise<Admission<object>>;
  open(
    socket: SocketLike,
    request: UpgradeRequest,
    state: object | undefined,
    options?: OpenOptions,
  ): Session<object>;
  /** How many actions and channels the app declares: they are only ever added. */
  declarations(): number;
}

/**
 * Where an app keeps its internals: a registered symbol, so that every copy of this module
 * finds them (an app loaded as CommonJS, its adapter as ES modules: two copies of the
 * package in one process), and not a name its users see.
 */
const INTERNALS: unique symbol = Symbol.for("socketapi.app-internals");

/** Records an app's internals; the app does it when it is made. */
export function registerApp(app: object, internals: AppInternals): void {
  Object.defineProperty(app, INTERNALS, { value: internals });
}

/** An app's internals; throws for something that is not a SocketAPI app. */
export function internalsOf(app: object): AppInternals {
  const internals = (app as { [INTERNALS]?: AppInternals })[INTERNALS];
  if (!internals) throw new TypeError("Not a SocketAPI app: make it with `new SocketAPI()`.");
  return internals;
}

/**
 * Runs an upgrade's checks (origin, connection limit) and `onConnect`. Call it before
 * accepting the socket, and answer with `response` when the connection is refused; an
 * admitted upgrade holds a place among `maxConnections` (its `slot`) until
 * {@link openConnection} takes it or the adapter releases it. Synchronous unless
 * `onConnect` is async; never throws.
 *
 * @example
 * ```ts
 * const admission = await admitUpgrade(app, { url: request.url, headers: request.headers });
 * if (!admission.ok) return admission.response;
 * ```
 */
export function admitUpgrade<State extends object>(
  // biome-ignore lint/suspicious/noExplicitAny: any app can be served.
  app: import("../app.ts").SocketAPI<State, any, any>,
  request: UpgradeRequest,
): Admission<State> | Promise<Admission<State>> {
  return internalsOf(app).admit(request) as Admission<State> | Promise<Admission<State>>;
}

/**
 * Starts serving an accepted socket: returns the connection's session, which the adapter
 * feeds the socket's events (`receiveText`, `receiveBinary`, `handleClose`).
 *
 * @example
 * ```ts
 * const session = openConnection(app, socket, request, admission.state, { slot: admission.slot });
 * socket.onmessage = (event) => session.receive(event.data);
 * ```
 */
export function openConnection<State extends object>(
  // biome-ignore lint/suspicious/noExplicitAny: any app can be served.
  app: import("../app.ts").SocketAPI<State, any, any>,
  socket: SocketLike,
  request: UpgradeRequest,
  state: State | undefined,
  options?: OpenOptions,
): Session<State> {
  return internalsOf(app).open(socket, request, state, options) as unknown as Session<State>;
}

/** An app's own hub: its connections, its subscriber index and its relay. */
export function hubOf(app: object): Hub {
  return internalsOf(app).hub;
}

/** Tells an app's `onError` (default `console.error`) of an unexpected error; never throws. */
export function reportToApp(app: object, ...report: Parameters<SessionHost["reportError"]>): void {
  internalsOf(app).reportError(...report);
}
