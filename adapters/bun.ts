/**
 * Serves a SocketAPI app with `Bun.serve`. Broadcasts use Bun's native topics
 * (`ws.subscribe`, `server.publish`): one call per broadcast, not a loop over sockets.
 *
 * @example
 * ```ts
 * import { bun } from "socketapi/bun";
 * import app from "./main.ts";
 *
 * const socketapi = bun(app);
 * const server = Bun.serve({ ...socketapi, port: 8000 });
 * process.on("SIGTERM", () => socketapi.shutdown(server));
 * ```
 *
 * @module
 */

import type { Server, ServerWebSocket, WebSocketHandler } from "bun";
import type { AnyApp, RoutingOptions } from "../src/adapter.ts";
import {
  admitUpgrade,
  type ConnectionSlot,
  closeAdmin,
  closeFallbackSessions,
  closeSessions,
  hubOf,
  isLoopbackAddress,
  type NativeDelivery,
  openConnection,
  refusalOf,
  registerRuntimeUpgrader,
  routeFetch,
  type Session,
  type SocketLike,
  type Subscriber,
  startAdmin,
  type UpgradeRequest,
} from "../src/adapter.ts";

/** What this runtime can and cannot do, for the cross-runtime suite and the docs. */
export { bunCapabilities as capabilities } from "./capabilities.ts";

// --- Options ---

/** What Bun keeps on each socket (`ws.data`). */
export interface SocketData {
  app: AnyApp;
  request: UpgradeRequest;
  state: object;
  /** The admission's place among `maxConnections`, until the socket opens. */
  slot?: ConnectionSlot | undefined;
  /** The subprotocol accepted (`socketapi`), and when the credential expires. */
  protocol?: string | undefined;
  expiresAt?: number | undefined;
  session?: Session<object>;
}

/**
 * Options of {@link bun}: the kit's `path`, `broadcast` and `docs` (`RoutingOptions`), and
 * Bun's frame limit.
 */
export interface BunOptions extends RoutingOptions {
  /**
   * Frames above this many bytes make Bun close the socket with 1009 instead of reading
   * them; default four times the app's `maxMessageBytes`.
   */
  maxPayloadLength?: number | undefined;
}

/** What {@link bun} returns: spread it into `Bun.serve`, or `export default` it. */
export interface BunHandler {
  fetch(request: Request, server: Server<SocketData>): Promise<Response | undefined>;
  websocket: WebSocketHandler<SocketData>;
  /** Closes the app's sockets with 1001, waits for them (at most `timeout` ms), stops the server. */
  shutdown(server: Server<SocketData>, options?: { timeout?: number | undefined }): Promise<void>;
}

// --- Sockets ---

/**
 * A Bun socket as the core sees it. Bun's `send` returns the bytes sent, -1 when the frame
 * is queued behind backpressure, and 0 when it was dropped: the session treats 0 as a
 * failed send.
 */
export class BunSocket implements SocketLike {
  readonly ws: ServerWebSocket<SocketData>;
  /** Frames this long and longer are compressed, where the socket negotiated it. */
  readonly #compressFrom: number;

  constructor(ws: ServerWebSocket<SocketData>, compressFrom = Number.POSITIVE_INFINITY) {
    this.ws = ws;
    this.#compressFrom = compressFrom;
  }

  get readyState(): number {
    return this.ws.readyState;
  }

  get bufferedAmount(): number {
    return this.ws.getBufferedAmount();
  }

  send(data: string | Uint8Array<ArrayBuffer>): number {
    return this.ws.send(data, data.length >= this.#compressFrom);
  }

  close(code?: number, reason?: string): void {
    this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }
}

/**
 * Bun's socket options that carry an app's limits: frames over four times
 * `maxMessageBytes` close with 1009 before they are read; idle sockets are pinged and
 * silent ones dropped after `idleTimeout`; a slow reader is closed at `maxBufferedBytes`
 * (Bun fans broadcasts out in native code, where the session's own check cannot see them).
 *
 * @example
 * ```ts
 * Bun.serve({ fetch: hono.fetch, websocket: { ...websocket, ...websocketLimits(app) } });
 * ```
 */
export function websocketLimits(app: AnyApp): Partial<WebSocketHandler<SocketData>> {
  return {
    maxPayloadLength: app.limits.maxFrameBytes,
    idleTimeout: Math.min(960, app.limits.idleTimeout),
    backpressureLimit: app.limits.maxBufferedBytes,
    closeOnBackpressureLimit: true,
    // uWS's shared compressor and decompressor: no zlib memory per socket. Inflating stops
    // at maxPayloadLength, counted inflated (1009).
    perMessageDeflate: app.limits.compression !== false,
  };
}

/** The socket handlers: they only forward Bun's events to the socket's session. */
export const websocket: WebSocketHandler<SocketData> = {
  open(ws) {
    const { app, request, state, slot, protocol, expiresAt } = ws.data;
    ws.data.session = openConnection(app, new BunSocket(ws, compressFrom(app)), request, state, {
      slot,
      protocol,
      expiresAt,
    });
    ws.data.slot = undefined;
  },
  message(ws, message) {
    const session = ws.data.session;
    if (!session) return;
    session.receive(message);
  },
  close(ws, code, reason) {
    ws.data.session?.handleClose(code, reason);
  },
};

/**
 * Bun's topics as the app's delivery: each concrete channel name is a topic, a subscriber
 * is `ws.subscribe(name)`, and a broadcast is one `server.publish`, fanned out in native
 * code (about 27 times cheaper per delivery than a loop of `ws.send`, measured). The app's
 * subscriber index still keeps who is subscribed; connections that are not Bun sockets (an
 * in-memory test client) are sent to in a loop.
 */
class BunDelivery implements NativeDelivery {
  /** The server, known from the first request. */
  server: Server<SocketData> | undefined;
  /** Frames this long and longer are published compressed (deflated once for the topic). */
  readonly compressFrom: number;

  constructor(app: AnyApp) {
    this.compressFrom = compressFrom(app);
  }

  join(channel: string, subscriber: Subscriber): boolean {
    const ws = bunSocketOf(subscriber);
    // A connection that speaks a binary codec is sent its frames encoded, in the loop.
    if (!ws || (subscriber as Session<object>).codec !== undefined) return false;
    ws.subscribe(channel);
    return true;
  }

  leave(channel: string, subscriber: Subscriber): void {
    const ws = bunSocketOf(subscriber);
    // A closed socket has already left its topics in Bun.
    if (ws?.readyState === 1 && ws.isSubscribed(channel)) ws.unsubscribe(channel);
  }

  publish(channel: string, frame: string): number {
    if (!this.server) return 0;
    // 0 means nobody received it (no subscriber, or every send was dropped).
    if (this.server.publish(channel, frame, frame.length >= this.compressFrom) === 0) return 0;
    return this.server.subscriberCount(channel);
  }

  publishExcept(channel: string, frame: string, excluded: Subscriber): number {
    const ws = bunSocketOf(excluded);
    // A socket's own publish reaches every subscriber of the topic but itself.
    if (!this.server || ws?.readyState !== 1 || !ws.isSubscribed(channel)) {
      return this.publish(channel, frame);
    }
    if (ws.publish(channel, frame, frame.length >= this.compressFrom) === 0) return 0;
    return this.server.subscriberCount(channel) - 1;
  }
}

/** The shortest frame compressed for `app`; infinite without `compression`. */
function compressFrom(app: AnyApp): number {
  const { compression } = app.limits;
  return compression === false ? Number.POSITIVE_INFINITY : compression.threshold;
}

function bunSocketOf(subscriber: Subscriber): ServerWebSocket<SocketData> | undefined {
  const socket = (subscriber as Session<object>).socket;
  return socket instanceof BunSocket ? socket.ws : undefined;
}

/** The delivery each app uses on Bun, made when the app first serves here. */
const deliveries = new WeakMap<AnyApp, BunDelivery>();

function deliverThroughBun(app: AnyApp, server: Server<SocketData>): void {
  let delivery = deliveries.get(app);
  if (!delivery) {
    delivery = new BunDelivery(app);
    deliveries.set(app, delivery);
    hubOf(app).useNativeDelivery(delivery);
  }
  delivery.server ??= server;
}

// --- Upgrades ---

/**
 * Upgrades a request to a SocketAPI connection on Bun, after `onConnect` admitted it.
 * Returns `undefined` when upgraded (as Bun's `fetch` expects), else the refusal.
 */
export async function upgrade(
  app: AnyApp,
  request: Request,
  server: Server<SocketData>,
): Promise<Response | undefined> {
  deliverThroughBun(app, server);
  const upgradeRequest: UpgradeRequest = { url: request.url, headers: request.headers };
  const admission = await admitUpgrade(app, upgradeRequest);
  if (!admission.ok) return admission.response;
  // Bun's `Headers` are native and outlive the request: keeping them costs a connection
  // about 700 bytes of RSS, less than a copy in the JavaScript heap (1,700 measured).
  const { protocol, expiresAt } = admission;
  const data: SocketData = {
    app,
    // The upgrade's own request unless a token in Sec-WebSocket-Protocol had to go.
    request: admission.request,
    state: admission.state,
    slot: admission.slot,
    protocol,
    expiresAt,
  };
  const upgraded =
    protocol === undefined
      ? server.upgrade(request, { data })
      : server.upgrade(request, { data, headers: { "Sec-WebSocket-Protocol": protocol } });
  if (upgraded) return undefined;
  admission.slot.release();
  return refusalOf("upgrade-required");
}

// --- Serving ---

/**
 * A `Bun.serve` handler for `app`: WebSocket upgrades (after `onConnect`), the broadcast
 * endpoint, and `426 Upgrade Required` for other requests.
 *
 * @example
 * ```ts
 * // server.ts, run with `bun server.ts`
 * export default { ...bun(app), port: 8000 };
 * ```
 */
export function bun(app: AnyApp, options: BunOptions = {}): BunHandler {
  let stopping = false;
  // The dashboard hears the other instances from the start (a wrong token throws here).
  void startAdmin(app, options.admin);
  return {
    async fetch(request, server) {
      return routeFetch(app, request, {
        path: options.path,
        broadcast: options.broadcast,
        docs: options.docs,
        fallback: options.fallback,
        admin: options.admin,
        fromLoopback: () => isLoopbackAddress(server.requestIP(request)?.address),
        stopping: () => stopping,
        upgrade: (target) => upgrade(target ?? app, request, server),
      });
    },
    websocket: {
      ...websocket,
      ...websocketLimits(app),
      ...(options.maxPayloadLength === undefined
        ? {}
        : { maxPayloadLength: options.maxPayloadLength }),
    },
    async shutdown(server, { timeout } = {}) {
      stopping = true;
      if (options.fallback) await closeFallbackSessions(app);
      if (options.admin) await closeAdmin(app, timeout);
      const sessions = [...app.connections].filter(
        (c) => (c as Session<object>).socket instanceof BunSocket,
      );
      await closeSessions(sessions as Session<object>[], timeout);
      await server.stop(true);
    },
  };
}

// --- Hono ---

/** Whether a middleware's `env` is Bun's server (Hono on Bun passes it so). */
function isBunServer(env: unknown): env is Server<SocketData> {
  const candidate = env as Partial<Server<SocketData>> | undefined;
  return typeof candidate?.upgrade === "function" && typeof candidate.publish === "function";
}

// Hono's middleware accepts an upgrade on Bun through the server Hono passes as `env`.
// Bun ignores the response of a request it upgraded; Hono needs one.
registerRuntimeUpgrader(
  (app, request, env) =>
    isBunServer(env)
      ? upgrade(app, request, env).then((refusal) => refusal ?? new Response(null))
      : undefined,
  (request, env) => (isBunServer(env) ? (env.requestIP(request)?.address ?? "") : undefined),
);
