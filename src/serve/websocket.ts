import type { AnyApp, ConnectionSlot } from "../app.ts";
import type { UpgradeRequest } from "../context.ts";
import { openConnection } from "./app-internals.ts";
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
): Session<State> {
  const session = openConnection(app, socket, request, state, { slot }) as Session<State>;
  socket.addEventListener("message", (event: MessageEvent) => session.receive(event.data));
  socket.addEventListener("close", (event: CloseEvent) => {
    session.handleClose(event.code, event.reason);
    onClosed?.(session);
  });
  // An error is followed by a close event, which cleans up.
  socket.addEventListener("error", ignoreError);
  return session;
}

/** One listener for every socket's error events (no closure per connection). */
function ignoreError(): void {}
