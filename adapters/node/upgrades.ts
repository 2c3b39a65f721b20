// Upgrades on a Node server: what each becomes (left to another listener, refused, or
// accepted), handed to `ws`, and the graceful shutdown of what was accepted.

import type { EventEmitter } from "node:events";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { WebSocketServer } from "ws";
import type { AnyApp } from "../../src/adapter.ts";
import {
  type Admission,
  type ConnectionSlot,
  closeSessions,
  refusalOf,
  type UpgradeRequest,
} from "../../src/adapter.ts";
import type { SharedDeflate } from "./compression.ts";
import { refuseUpgrade } from "./http.ts";
import type { Attachment, CloseOptions } from "./options.ts";
import {
  type CorkedWebSocket,
  chosenProtocols,
  createWebSocketServer,
  deflaterOf,
  forgetDeflater,
  openSession,
  startHeartbeat,
} from "./socket.ts";

/** What to do with one upgrade request: leave it, refuse it, or accept it for an app. */
export type UpgradeDecision =
  | { kind: "ignore" }
  | { kind: "refuse"; response: Response }
  | {
      kind: "accept";
      app: AnyApp;
      /** What the connection keeps of the request (without a token it offered). */
      request: UpgradeRequest;
      state: object | undefined;
      slot: ConnectionSlot;
      /** The subprotocol to answer with, and when the credential expires. */
      protocol: string | undefined;
      expiresAt: number | undefined;
    };

/** What an admission means for an upgrade. */
export function decision(app: AnyApp, admission: Admission<object>): UpgradeDecision {
  if (!admission.ok) return { kind: "refuse", response: admission.response };
  const { request, state, slot, protocol, expiresAt } = admission;
  return { kind: "accept", app, request, state, slot, protocol, expiresAt };
}

/**
 * Listens to a server's upgrades: `decide` says what each becomes; accepted ones are
 * handed to `ws` (one `WebSocketServer` per app, for its frame limit).
 */
export function handleUpgrades(
  server: EventEmitter,
  decide: (req: IncomingMessage) => UpgradeDecision | Promise<UpgradeDecision>,
  maxPayload: (app: AnyApp) => number,
  unclaimedTimeout = DEFAULT_UNCLAIMED_TIMEOUT,
): Attachment {
  /** Per app: its `ws` server (for its frame limit and its sockets) and their heartbeat. */
  const apps = new Map<
    AnyApp,
    {
      wss: WebSocketServer;
      heartbeat: ReturnType<typeof setInterval>;
      deflater: SharedDeflate | undefined;
    }
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
    const { app, slot } = decision;
    if (socket.destroyed) {
      slot.release();
      return;
    }
    let served = apps.get(app);
    if (!served) {
      const wss = createWebSocketServer(app, maxPayload(app));
      served = { wss, heartbeat: startHeartbeat(app, wss), deflater: deflaterOf(app) };
      apps.set(app, served);
    }
    const { deflater } = served;
    let opened = false;
    if (decision.protocol !== undefined) chosenProtocols.set(req, decision.protocol);
    served.wss.handleUpgrade(req, socket, head, (ws) => {
      opened = true;
      openSession(app, ws as CorkedWebSocket, deflater, decision);
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
    async close({ timeout }: CloseOptions = {}): Promise<void> {
      closing = true;
      server.off("upgrade", listener);
      for (const { wss, heartbeat, deflater } of apps.values()) {
        clearInterval(heartbeat);
        forgetDeflater(deflater);
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
