import type { AnyApp, ConnectionSlot } from "../app.ts";
import type { UpgradeRequest } from "../context.ts";
import { type OpenOptions, openConnection } from "./app-internals.ts";
import type { Session } from "./session.ts";

/**
 * Serves an accepted WHATWG `WebSocket` (Deno's `Deno.upgradeWebSocket`, a Worker's
 * `WebSocketPair`): opens a session for it and feeds it the socket's events.
 *
 * @example
 * ```ts
 * const { socket, response } = Deno.upgradeWebSocket(request);
 * serveWebSocket(app, socket, { url: request.url, headers: request.headers }, state, slot);
 * return response;
 * ```
 */
export function serveWebSocket<State extends object>(
  app: AnyApp,
  socket: WebSocket,
  request: UpgradeRequest,
  state: State | undefined,
  slot?: ConnectionSlot,
  onClosed?: (session: Session<State>) => void,
  accepted: Pick<OpenOptions, "protocol" | "expiresAt"> = {},
): Session<State> {
  const { protocol, expiresAt } = accepted;
  const session = openConnection(app, socket, request, state, {
    slot,
    protocol,
    expiresAt,
  }) as Session<State>;
  // What a session owes its client once the socket is open (the `expiry` frame).
  if (expiresAt !== undefined && socket.readyState === CONNECTING) {
    socket.addEventListener("open", () => session.greet(), { once: true });
  }
  // Binary frames as bytes at once (a Blob, the default, would have to be read first).
  socket.binaryType = "arraybuffer";
  socket.addEventListener("message", (event: MessageEvent) => session.receive(event.data));
  socket.addEventListener("close", (event: CloseEvent) => {
    session.handleClose(event.code, event.reason);
    onClosed?.(session);
  });
  // An error is followed by a close event, which cleans up.
  socket.addEventListener("error", ignoreError);
  return session;
}

const CONNECTING = 0;

/** One listener for every socket's error events (no closure per connection). */
function ignoreError(): void {}
