/**
 * Serves a SocketAPI app on Node with the `ws` package: on its own port (`serve`) or on an
 * existing `http.Server` (`attach`).
 *
 * @example
 * ```ts
 * import { serve } from "socketapi/node";
 * import app from "./main.ts";
 *
 * const server = await serve(app, { port: 8000 });
 * process.on("SIGTERM", () => server.close());
 * ```
 *
 * @module
 */

import type { EventEmitter } from "node:events";
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from "node:http";
import type { AddressInfo } from "node:net";
import { type Duplex, Readable } from "node:stream";
import { WebSocket, WebSocketServer } from "ws";
import {
  type Admission,
  admitUpgrade,
  BROADCAST_PATH,
  type BroadcastEndpointOptions,
  broadcastOptions,
  type ConnectionSlot,
  closeSessions,
  handleBroadcastRequest,
  isLoopbackAddress,
  KeptRequest,
  keepRequest,
  openConnection,
  refusalOf,
  registerRuntimeUpgrader,
  reportToApp,
  routeRequest,
  type Session,
  type UpgradeRequest,
} from "../src/adapter.ts";
import type { SocketAPI } from "../src/index.ts";

// biome-ignore lint/suspicious/noExplicitAny: any app can be served.
type AnyApp = SocketAPI<any, any, any>;

/** What this runtime can and cannot do, for the cross-runtime suite and the docs. */
export { nodeCapabilities as capabilities } from "./capabilities.ts";

/** Where `injectWebSocket` puts its upgrade callback in Hono's `env`, for the middleware. */
const NODE_UPGRADE: unique symbol = Symbol.for("socketapi.node-upgrade");

/** Accepts an upgrade on Node for `app`: returns the refusal, or a marker response. */
type NodeUpgrade = (app: AnyApp, request: UpgradeRequest) => Promise<Response>;

// Hono's middleware accepts an upgrade on Node through the callback in its `env`.
registerRuntimeUpgrader((app, request, env) => {
  const upgrade = (env as { [NODE_UPGRADE]?: NodeUpgrade } | undefined)?.[NODE_UPGRADE];
  return upgrade?.(app, { url: request.url, headers: request.headers });
});

/** Options of {@link attach}. */
export interface AttachOptions {
  /** Only upgrades to this path are served (e.g. `/ws`); default: every path. */
  path?: string | undefined;
  /**
   * Frames above this many bytes make `ws` close the socket with 1009 instead of reading
   * them; default four times the app's `maxMessageBytes`. Frames between the two get the
   * `MESSAGE_TOO_LARGE` error frame and the connection stays open.
   */
  maxPayload?: number | undefined;
  /**
   * With `path`: how long an upgrade to another path waits for another `upgrade` listener
   * of the server to take it before it is answered 404, in ms (default 10,000). When the
   * app is the server's only upgrade listener, such upgrades are answered 404 at once.
   */
  unclaimedTimeout?: number | undefined;
}

/** Options of {@link serve}. */
export interface ServeOptions extends AttachOptions {
  /** The port; default 8000. `0` picks a free one (read it from `server.port`). */
  port?: number | undefined;
  /** The interface to listen on; default `127.0.0.1`. Use `0.0.0.0` to accept from the network. */
  host?: string | undefined;
  /** The broadcast endpoint (`POST /_broadcast`); `false` turns it off. */
  broadcast?: BroadcastEndpointOptions | false | undefined;
}

/** Options of a graceful shutdown. */
export interface CloseOptions {
  /**
   * How long frames already taken get to be answered before sockets are closed with 1001,
   * in ms (default 5000). Sockets that then do not finish the close handshake within two
   * seconds are cut off.
   */
  timeout?: number | undefined;
}

/** A running attachment of an app to an `http.Server`. */
export interface Attachment {
  /** Refuses new upgrades, closes open sockets with 1001 and resolves when they are closed. */
  close(options?: CloseOptions): Promise<void>;
}

/** A running server made by {@link serve}. */
export interface NodeServer extends Attachment {
  /** The underlying HTTP server. */
  readonly server: Server;
  /** The port it listens on. */
  readonly port: number;
  /** The WebSocket URL of the app, e.g. `ws://127.0.0.1:8000/`. */
  readonly url: string;
}

// Node writes each `ws.send` to the socket at once: one syscall per frame. Corking the
// socket and uncorking once per event-loop turn batches the frames of a turn (a broadcast,
// a burst of answers) into one write, as uWS and Bun do by themselves. `ws` has no public
// cork API; its socket is `_socket`.
const corkedSockets = new Set<CorkedWebSocket>();
let flushScheduled = false;

function flushCorkedSockets(): void {
  flushScheduled = false;
  for (const ws of corkedSockets) ws.uncork();
  corkedSockets.clear();
}

/**
 * A `ws` socket whose sends are batched per event-loop turn, with its session, its frame
 * limit and the heartbeat's liveness mark declared as fields: properties added to a `ws`
 * socket afterwards would cost each connection an out-of-object property store.
 */
class CorkedWebSocket extends WebSocket {
  session: Session<object> | undefined = undefined;
  maxBytes = 0;
  /** Whether the peer sent anything (a frame, a pong) since the heartbeat's last round. */
  alive = true;
  /** Bytes sent in this turn, waiting in the corked socket until it is flushed. */
  #corkedBytes = 0;
  #corked = false;

  override send(data: string | Buffer, ...rest: unknown[]): void {
    if (!this.#corked) {
      const socket = (this as unknown as { _socket?: Duplex })._socket;
      if (socket && !socket.destroyed) {
        socket.cork();
        this.#corked = true;
        corkedSockets.add(this);
        if (!flushScheduled) {
          flushScheduled = true;
          setImmediate(flushCorkedSockets);
        }
      }
    }
    if (this.#corked) this.#corkedBytes += data.length;
    (super.send as (...args: unknown[]) => void)(data, ...rest);
  }

  /** Bytes sent in this turn and still corked. */
  get corkedBytes(): number {
    return this.#corkedBytes;
  }

  uncork(): void {
    this.#corkedBytes = 0;
    this.#corked = false;
    (this as unknown as { _socket?: Duplex })._socket?.uncork();
  }
}

function toHeaders(raw: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (Array.isArray(value)) for (const item of value) headers.append(name, item);
    else if (value !== undefined) headers.set(name, value);
  }
  return headers;
}

function requestUrl(path: string, host: string | undefined): string {
  try {
    return new URL(path, `http://${host ?? "localhost"}`).href;
  } catch {
    return new URL(path, "http://localhost").href;
  }
}

/** The upgrade request as the core sees it, kept as Node's parser read it until a handler asks. */
function upgradeRequest(req: IncomingMessage): UpgradeRequest {
  return new KeptRequest(req.url ?? "/", req.rawHeaders.join("\n"));
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? "/";
  const query = url.indexOf("?");
  return query === -1 ? url : url.slice(0, query);
}

/** Writes a WHATWG `Response` as a raw HTTP response on a socket that was not upgraded. */
async function refuseUpgrade(socket: Duplex, response: Response): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  let head = `HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ""}\r\n`;
  response.headers.forEach((value, name) => {
    if (name !== "content-length" && name !== "connection") head += `${name}: ${value}\r\n`;
  });
  head += `content-length: ${body.length}\r\nconnection: close\r\n\r\n`;
  if (!socket.destroyed) socket.end(Buffer.concat([Buffer.from(head, "latin1"), body]));
}

/** What to do with one upgrade request: leave it, refuse it, or accept it for an app. */
type UpgradeDecision =
  | { kind: "ignore" }
  | { kind: "refuse"; response: Response }
  | {
      kind: "accept";
      app: AnyApp;
      request: UpgradeRequest;
      state: object | undefined;
      slot: ConnectionSlot;
    };

function createWebSocketServer(maxPayload: number): WebSocketServer {
  return new WebSocketServer({
    noServer: true,
    maxPayload,
    // Invalid UTF-8 must not close the connection: it decodes to U+FFFD and is then
    // answered like any other bad frame.
    skipUTF8Validation: true,
    perMessageDeflate: false,
    WebSocket: CorkedWebSocket,
  });
}

// What the client has not read yet: the socket's buffer without this turn's frames, which
// are held back on purpose, so that a slow reader shows from one turn to the next. (`ws`
// defines `bufferedAmount` as an accessor; TypeScript knows it as a field.)
const wsBufferedAmount = Object.getOwnPropertyDescriptor(
  WebSocket.prototype,
  "bufferedAmount",
)?.get;
Object.defineProperty(CorkedWebSocket.prototype, "bufferedAmount", {
  get(this: CorkedWebSocket): number {
    return Math.max(0, (wsBufferedAmount?.call(this) ?? 0) - this.corkedBytes);
  },
});

// The listeners are shared by every socket (they find their session on `this`), so that a
// connection costs no closures. Every socket is a `CorkedWebSocket` (`createWebSocketServer`).
function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  const ws = this as CorkedWebSocket;
  ws.alive = true;
  const session = ws.session;
  if (!session) return;
  if (isBinary) session.receiveBinary();
  else if (data.length > ws.maxBytes) session.receiveTooLarge();
  else session.receiveText(data.toString("utf8"), data.length);
}

function onPong(this: WebSocket): void {
  (this as CorkedWebSocket).alive = true;
}

function onClose(this: WebSocket, code: number, reason: Buffer): void {
  (this as CorkedWebSocket).session?.handleClose(code, reason.toString());
}

// A protocol error (a frame over maxPayload, a bad opcode) closes the socket; the close
// event cleans up.
function onError(): void {}

/** Feeds a `ws` socket's events to a new session of `app`. */
function openSession(
  app: AnyApp,
  ws: CorkedWebSocket,
  request: UpgradeRequest,
  state: object | undefined,
  slot: ConnectionSlot,
): void {
  ws.session = openConnection(app, ws, keepRequest(request), state, { slot });
  ws.maxBytes = app.limits.maxMessageBytes;
  ws.alive = true;
  ws.on("message", onMessage);
  ws.on("pong", onPong);
  ws.on("close", onClose);
  ws.on("error", onError);
}

/**
 * Every half `idleTimeout`, pings the sockets; one that sent nothing since the last round,
 * not even a pong, is a dead peer and is terminated (its close cleans up).
 */
function startHeartbeat(app: AnyApp, wss: WebSocketServer): ReturnType<typeof setInterval> {
  const timer = setInterval(
    () => {
      for (const ws of wss.clients as Set<CorkedWebSocket>) {
        if (ws.alive === false) {
          ws.terminate();
          continue;
        }
        ws.alive = false;
        ws.ping();
      }
    },
    (app.limits.idleTimeout * 1000) / 2,
  );
  timer.unref();
  return timer;
}

/**
 * Listens to a server's upgrades: `decide` says what each becomes; accepted ones are
 * handed to `ws` (one `WebSocketServer` per app, for its frame limit).
 */
/** What an admission means for an upgrade. */
function decision(
  app: AnyApp,
  request: UpgradeRequest,
  admission: Admission<object>,
): UpgradeDecision {
  if (!admission.ok) return { kind: "refuse", response: admission.response };
  return { kind: "accept", app, request, state: admission.state, slot: admission.slot };
}

function handleUpgrades(
  server: EventEmitter,
  decide: (req: IncomingMessage) => UpgradeDecision | Promise<UpgradeDecision>,
  maxPayload: (app: AnyApp) => number,
  unclaimedTimeout = DEFAULT_UNCLAIMED_TIMEOUT,
): Attachment {
  /** Per app: its `ws` server (for its frame limit and its sockets) and their heartbeat. */
  const apps = new Map<
    AnyApp,
    { wss: WebSocketServer; heartbeat: ReturnType<typeof setInterval> }
  >();
  let closing = false;

  const accept = (
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    decision: UpgradeDecision,
  ): void => {
    if (decision.kind === "ignore") {
      leaveToOthers(server, socket, unclaimedTimeout);
      return;
    }
    socket.on("error", destroyOnError);
    if (decision.kind === "refuse" || closing) {
      if (decision.kind === "accept") decision.slot.release();
      const response = decision.kind === "refuse" ? decision.response : refusalOf("shutting-down");
      refuseUpgrade(socket, response).catch(() => socket.destroy());
      return;
    }
    const { app, request, state, slot } = decision;
    if (socket.destroyed) {
      slot.release();
      return;
    }
    let served = apps.get(app);
    if (!served) {
      const wss = createWebSocketServer(maxPayload(app));
      served = { wss, heartbeat: startHeartbeat(app, wss) };
      apps.set(app, served);
    }
    let opened = false;
    served.wss.handleUpgrade(req, socket, head, (ws) => {
      opened = true;
      openSession(app, ws as CorkedWebSocket, request, state, slot);
    });
    // `ws` answers a malformed handshake (400) itself, without calling back.
    if (!opened) slot.release();
  };

  const listener = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    let decision: UpgradeDecision | Promise<UpgradeDecision>;
    try {
      decision = closing ? { kind: "refuse", response: refusalOf("shutting-down") } : decide(req);
    } catch (error) {
      console.error("[socketapi] upgrade failed", error);
      socket.destroy();
      return;
    }
    // An upgrade without an async onConnect is accepted in the same turn, with no promise.
    if (decision instanceof Promise) {
      decision.then(
        (settled) => accept(req, socket, head, settled),
        (error: unknown) => {
          console.error("[socketapi] upgrade failed", error);
          socket.destroy();
        },
      );
    } else accept(req, socket, head, decision);
  };
  server.on("upgrade", listener);

  return {
    async close({ timeout = 5000 }: CloseOptions = {}): Promise<void> {
      closing = true;
      server.off("upgrade", listener);
      for (const { wss, heartbeat } of apps.values()) {
        clearInterval(heartbeat);
        const sockets = [...wss.clients] as CorkedWebSocket[];
        const sessions = sockets.flatMap((ws) => (ws.session ? [ws.session] : []));
        await closeSessions(sessions, timeout);
        // Whoever did not finish the close handshake in time is cut off.
        for (const ws of sockets) ws.terminate();
        wss.close();
      }
    },
  };
}

/** How long an upgrade to another path waits for another listener to take it, by default. */
const DEFAULT_UNCLAIMED_TIMEOUT = 10_000;

/**
 * An upgrade to a path this app does not serve: it is another listener's, if the server has
 * one. Alone on the server, it answers 404 at once; else it answers 404 if nobody has
 * written a byte to the socket within `timeout` ms, so that no socket is held forever.
 */
function leaveToOthers(server: EventEmitter, socket: Duplex, timeout: number): void {
  const notFound = (): void => {
    if (socket.destroyed || (socket as Duplex & { bytesWritten?: number }).bytesWritten) return;
    socket.on("error", destroyOnError);
    void refuseUpgrade(socket, refusalOf("not-found")).catch(() => socket.destroy());
  };
  if (server.listenerCount("upgrade") <= 1) {
    notFound();
    return;
  }
  const timer = setTimeout(notFound, timeout);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

/**
 * Serves `app` on an existing HTTP server: upgrades on `options.path` (or every path) go
 * through `onConnect`, then become connections. Other requests are left to the server.
 *
 * @example
 * ```ts
 * import { createServer } from "node:http";
 * import { attach } from "socketapi/node";
 *
 * const server = createServer((req, res) => res.end("hello"));
 * const ws = attach(app, server, { path: "/ws" });
 * server.listen(8000, "127.0.0.1");
 * ```
 */
export function attach(app: AnyApp, server: Server, options: AttachOptions = {}): Attachment {
  return attachRouted(app, server, options, false);
}

/** `attach`, routing upgrades by the one table (with the broadcast endpoint, for `serve`). */
function attachRouted(
  app: AnyApp,
  server: Server,
  options: AttachOptions,
  broadcast: BroadcastEndpointOptions | false | undefined,
): Attachment {
  return handleUpgrades(
    server,
    (req) => {
      const route = routeRequest(pathOf(req), true, { path: options.path, broadcast }, false);
      // Another path is another listener's, if the server has one.
      if (route === "not-found") return { kind: "ignore" };
      if (route === "broadcast") {
        return answerBroadcast(app, req, broadcastOptions({ broadcast }) ?? {}).then(
          (response) => ({
            kind: "refuse",
            response,
          }),
        );
      }
      const request = upgradeRequest(req);
      const admission = admitUpgrade(app, request);
      return admission instanceof Promise
        ? admission.then((settled) => decision(app, request, settled))
        : decision(app, request, admission);
    },
    () => options.maxPayload ?? app.limits.maxMessageBytes * 4,
    options.unclaimedTimeout,
  );
}

/** A Hono app, as far as {@link injectWebSocket} needs it. */
export interface FetchApp {
  fetch(request: Request, env?: unknown): Response | Promise<Response>;
}

/**
 * Routes the upgrade requests of a Node server made by `@hono/node-server` through a Hono
 * app, so that `hono.get(path, socketapi(app))` can accept them: Hono's routing and
 * middleware (auth, logger, CORS) run for the upgrade as for any request, and whatever
 * Hono answers instead of an upgrade (401, 404) is sent to the client.
 *
 * @example
 * ```ts
 * import { serve } from "@hono/node-server";
 * import { Hono } from "hono";
 * import { socketapi } from "socketapi/hono";
 * import { injectWebSocket } from "socketapi/node";
 *
 * const hono = new Hono().get("/", socketapi(app));
 * const server = serve({ fetch: hono.fetch, port: 8000 });
 * injectWebSocket(server, hono);
 * ```
 */
export function injectWebSocket(
  server: EventEmitter,
  hono: FetchApp,
  options: Pick<AttachOptions, "maxPayload"> = {},
): Attachment {
  return handleUpgrades(
    server,
    async (req) => {
      let accepted: UpgradeDecision | undefined;
      const upgrade: NodeUpgrade = async (app, request) => {
        const admission = await admitUpgrade(app, request);
        if (!admission.ok) return admission.response;
        accepted = {
          kind: "accept",
          app,
          request,
          state: admission.state,
          slot: admission.slot,
        };
        return new Response(null, { status: 200, headers: { "x-socketapi-upgrade": "accepted" } });
      };
      const request = new Request(requestUrl(req.url ?? "/", req.headers.host), {
        headers: toHeaders(req.headers),
      });
      const env = { incoming: req, outgoing: undefined, [NODE_UPGRADE]: upgrade };
      const response = await hono.fetch(request, env);
      return accepted ?? { kind: "refuse", response };
    },
    (app) => options.maxPayload ?? app.limits.maxMessageBytes * 4,
  );
}

async function sendResponse(
  req: IncomingMessage,
  res: ServerResponse,
  response: Response,
): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  // A body left unread (the caller was refused first) ends with the connection.
  if (!req.readableEnded) headers.connection = "close";
  res.writeHead(response.status, headers);
  res.end(Buffer.from(await response.arrayBuffer()));
}

/**
 * The broadcast endpoint as a Node request handler, for servers made without `serve`. It
 * resolves `true` when it answered the request (its path matched), else `false`.
 *
 * @example
 * ```ts
 * const broadcast = broadcastHandler(app, { token: process.env.BROADCAST_TOKEN });
 * const server = createServer(async (req, res) => {
 *   if (await broadcast(req, res)) return;
 *   res.end("hello");
 * });
 * ```
 */
export function broadcastHandler(
  app: AnyApp,
  options: BroadcastEndpointOptions = {},
): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const path = options.path ?? BROADCAST_PATH;
  return async (req, res) => {
    if (pathOf(req) !== path) return false;
    await sendResponse(req, res, await answerBroadcast(app, req, options));
    return true;
  };
}

/**
 * The broadcast endpoint's answer to a Node request. The body streams: the endpoint reads
 * it only after it has checked who calls, and no further than the app's frame limit.
 */
function answerBroadcast(
  app: AnyApp,
  req: IncomingMessage,
  options: BroadcastEndpointOptions,
): Promise<Response> {
  const post = req.method === "POST";
  const request = new Request(requestUrl(req.url ?? "/", req.headers.host), {
    method: req.method ?? "GET",
    headers: toHeaders(req.headers),
    ...(post ? { body: Readable.toWeb(req) as unknown as ReadableStream, duplex: "half" } : {}),
  } as RequestInit);
  return handleBroadcastRequest(app, request, {
    fromLoopback: isLoopbackAddress(req.socket.remoteAddress),
    options,
  });
}

/**
 * Serves `app` on its own port: WebSocket upgrades on every path (or `options.path`), the
 * broadcast endpoint, and `426 Upgrade Required` for other requests. Resolves once
 * listening; `close()` shuts down gracefully.
 *
 * @example
 * ```ts
 * const server = await serve(app, { port: 8000 });
 * console.log(`listening on ${server.url}`);
 * await server.close(); // closes sockets with 1001, then the server
 * ```
 */
export async function serve(app: AnyApp, options: ServeOptions = {}): Promise<NodeServer> {
  // Plain HTTP requests, by the one table: the broadcast endpoint, 404 off the path, 426.
  const server = createServer((req, res) => {
    void (async () => {
      const route = routeRequest(pathOf(req), false, options, false);
      const response =
        route === "broadcast"
          ? await answerBroadcast(app, req, broadcastOptions(options) ?? {})
          : refusalOf(route === "upgrade" ? "upgrade-required" : route);
      await sendResponse(req, res, response);
    })().catch((error: unknown) => {
      reportToApp(app, error, { phase: "broadcast" });
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  const attachment = attachRouted(app, server, options, options.broadcast);
  const { path } = options;
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8000, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    server,
    port,
    url: `ws://${urlHost}:${port}${path ?? "/"}`,
    async close(closeOptions?: CloseOptions): Promise<void> {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await attachment.close(closeOptions);
      server.closeAllConnections();
      await stopped;
    },
  };
}
