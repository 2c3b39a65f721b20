// The peer: a `ws` socket as a connection's socket, with its writes corked per event-loop
// turn, its listeners shared by every connection, and the heartbeat that finds dead peers.

import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocket, WebSocketServer } from "ws";
import type { AnyApp } from "../../src/adapter.ts";
import {
  type ConnectionSlot,
  keepRequest,
  openConnection,
  type Session,
  type UpgradeRequest,
} from "../../src/adapter.ts";
import { perMessageDeflateOf, SharedDeflate } from "./compression.ts";

// Node writes each `ws.send` to the socket at once: one syscall per frame. Corking the
// socket and uncorking once per event-loop turn batches the frames of a turn (a broadcast,
// a burst of answers) into one write, as uWS and Bun do by themselves. `ws` has no public
// cork API; its socket is `_socket`.
const corkedSockets = new Set<CorkedWebSocket>();

let flushScheduled = false;

/** The deflaters of apps with `compression`: what each keeps is let go every turn. */
const deflaters = new Set<SharedDeflate>();

function flushCorkedSockets(): void {
  flushScheduled = false;
  for (const ws of corkedSockets) ws.uncork();
  corkedSockets.clear();
  for (const deflater of deflaters) deflater.release();
}

/** The deflater of an app with `compression` (one per app), or `undefined`. */
export function deflaterOf(app: AnyApp): SharedDeflate | undefined {
  const { compression } = app.limits;
  if (compression === false) return undefined;
  const deflater = new SharedDeflate(compression);
  deflaters.add(deflater);
  return deflater;
}

/** How many frames the deflaters of the running apps deflated (the tests read it). */
export function deflatedFrames(): number {
  let count = 0;
  for (const deflater of deflaters) count += deflater.deflated;
  return count;
}

/** Forgets an app's deflater once its server closed. */
export function forgetDeflater(deflater: SharedDeflate | undefined): void {
  if (deflater) deflaters.delete(deflater);
}

/**
 * A `ws` socket whose sends are batched per event-loop turn, with its session, its frame
 * limit and the heartbeat's liveness mark declared as fields: properties added to a `ws`
 * socket afterwards would cost each connection an out-of-object property store.
 */
export class CorkedWebSocket extends WebSocket {
  session: Session<object> | undefined = undefined;
  maxBytes = 0;
  /** Whether the peer sent anything (a frame, a pong) since the heartbeat's last round. */
  alive = true;
  /** Where its text frames are deflated, when it negotiated permessage-deflate. */
  deflater: SharedDeflate | undefined = undefined;
  /** Bytes sent in this turn, waiting in the corked socket until it is flushed. */
  #corkedBytes = 0;
  #corked = false;

  // Named parameters, not `...rest`: a rest array would be allocated for every frame.
  override send(data: string | Uint8Array, options?: unknown, cb?: unknown): void {
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
    const deflater = this.deflater;
    if (
      deflater !== undefined &&
      this.#corked &&
      typeof data === "string" &&
      data.length >= deflater.threshold &&
      this.readyState === WebSocket.OPEN
    ) {
      // `ws` never compresses (its threshold is out of reach), so it never queues frames
      // behind a deflate: writing to its socket keeps the order of the frames.
      const frame = deflater.frameOf(data);
      (this as unknown as { _socket: Duplex })._socket.write(frame);
      this.#corkedBytes += frame.length;
      return;
    }
    if (this.#corked) this.#corkedBytes += data.length;
    (super.send as (data: unknown, options?: unknown, cb?: unknown) => void)(data, options, cb);
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

/**
 * The subprotocol each accepted upgrade answers with (`socketapi`, when the client offered
 * it), read by `ws` while it completes the handshake.
 */
export const chosenProtocols = new WeakMap<IncomingMessage, string>();

/** `socketapi` when admitted with it; else what `ws` answers by itself (the first offered). */
function handleProtocols(offered: Set<string>, request: IncomingMessage): string | false {
  return chosenProtocols.get(request) ?? offered.values().next().value ?? false;
}

export function createWebSocketServer(app: AnyApp, maxPayload: number): WebSocketServer {
  const { compression } = app.limits;
  return new WebSocketServer({
    handleProtocols,
    noServer: true,
    maxPayload,
    // Invalid UTF-8 must not close the connection: it decodes to U+FFFD and is then
    // answered like any other bad frame.
    skipUTF8Validation: true,
    // Inflated frames are held to maxPayload too: `ws` stops inflating past it (1009).
    perMessageDeflate: compression === false ? false : perMessageDeflateOf(compression),
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
  if (isBinary) session.receiveBinary(data);
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

/** Feeds a `ws` socket's events to a new session of `app`, as its admission said. */
export function openSession(
  app: AnyApp,
  ws: CorkedWebSocket,
  deflater: SharedDeflate | undefined,
  accepted: {
    request: UpgradeRequest;
    state: object | undefined;
    slot: ConnectionSlot;
    protocol: string | undefined;
    expiresAt: number | undefined;
  },
): void {
  const { request, state, slot, protocol, expiresAt } = accepted;
  ws.session = openConnection(app, ws, keepRequest(request), state, { slot, protocol, expiresAt });
  ws.maxBytes = app.limits.maxMessageBytes;
  if (deflater !== undefined && ws.extensions.includes("permessage-deflate")) {
    ws.deflater = deflater;
  }
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
export function startHeartbeat(app: AnyApp, wss: WebSocketServer): ReturnType<typeof setInterval> {
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
