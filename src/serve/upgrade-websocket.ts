import type { AnyApp } from "../app.ts";
import { admitUpgrade } from "./app-internals.ts";
import { keepRequest } from "./kept-request.ts";
import { serveWebSocket } from "./websocket.ts";

/** A runtime's way to upgrade a fetch `Request` to a WHATWG `WebSocket` (`Deno.upgradeWebSocket`). */
export type UpgradeWebSocket = (
  request: Request,
  options: { idleTimeout: number },
) => { socket: WebSocket; response: Response };

/**
 * The runtime's own `upgradeWebSocket`, read from its global where it has one (Deno's),
 * bound to it; `undefined` elsewhere. What both the Deno adapter and the Hono middleware
 * on Deno upgrade with.
 */
export function runtimeUpgradeWebSocket(): UpgradeWebSocket | undefined {
  const deno = (globalThis as { Deno?: { upgradeWebSocket?: UpgradeWebSocket } }).Deno;
  return typeof deno?.upgradeWebSocket === "function"
    ? deno.upgradeWebSocket.bind(deno)
    : undefined;
}

/**
 * Upgrades a request with the runtime's `upgradeWebSocket` after `onConnect` admitted it,
 * and serves the socket. Returns the response to send: the 101, or the refusal. The
 * runtime pings idle sockets and closes those that stay silent past `idleTimeout`.
 */
export async function upgradeToWebSocket(
  app: AnyApp,
  request: Request,
  upgradeWebSocket: UpgradeWebSocket,
  onOpen?: (session: ReturnType<typeof serveWebSocket>) => void,
  onClosed?: (session: ReturnType<typeof serveWebSocket>) => void,
): Promise<Response> {
  const admission = await admitUpgrade(app, { url: request.url, headers: request.headers });
  if (!admission.ok) return admission.response;
  // The request is unusable once upgraded (Deno): the connection keeps a copy for handlers.
  // Reading its headers whole makes Deno cache a sorted list of them (an array and two
  // strings per header) on the `Headers`, which the upgraded socket keeps alive: about
  // 1.6 KB of heap per connection (V8 heap snapshots of 1,000 connections). Reading them
  // from a clone of the request instead saves it, but a clone follows the request's
  // signal, which makes Deno print a warning about its legacy abort behaviour.
  const kept = keepRequest(admission.request);
  const { protocol, expiresAt } = admission;
  let upgraded: { socket: WebSocket; response: Response };
  try {
    upgraded = upgradeWebSocket(request, { idleTimeout: app.limits.idleTimeout });
    // Set on the 101 rather than passed as Deno's `protocol` option: Deno looks for it in
    // the offer split at ", " only, and `ws` (Node's client) offers "a,b".
    if (protocol !== undefined) upgraded.response.headers.set("sec-websocket-protocol", protocol);
  } catch (error) {
    admission.slot.release();
    throw error;
  }
  const session = serveWebSocket(
    app,
    upgraded.socket,
    kept,
    admission.state,
    admission.slot,
    onClosed,
    { protocol, expiresAt },
  );
  onOpen?.(session);
  return upgraded.response;
}
