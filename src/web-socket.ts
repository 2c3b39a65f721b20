import type { SocketAPI } from "./app.ts";
import type { UpgradeRequest } from "./context.ts";
import type { Session } from "./session.ts";

// biome-ignore lint/suspicious/noExplicitAny: any app can be served.
type AnyApp = SocketAPI<any, any, any>;

/**
 * Serves an accepted WHATWG `WebSocket` (Deno's `Deno.upgradeWebSocket`, a Worker's
 * `WebSocketPair`): opens a session for it and feeds it the socket's events.
 *
 * @example
 * ```ts
 * const { socket, response } = Deno.upgradeWebSocket(request);
 * serveWebSocket(app, socket, { url: request.url, headers: request.headers }, state);
 * return response;
 * ```
 */
export function serveWebSocket<State extends object>(
  app: AnyApp,
  socket: WebSocket,
  request: UpgradeRequest,
  state: State,
): Session<State> {
  const session = app.open(socket, request, state) as Session<State>;
  socket.addEventListener("message", (event: MessageEvent) => session.receive(event.data));
  socket.addEventListener("close", (event: CloseEvent) =>
    session.handleClose(event.code, event.reason),
  );
  // An error is followed by a close event, which cleans up.
  socket.addEventListener("error", () => {});
  return session;
}

/**
 * Closes sessions with 1001 (server shutting down) and resolves once every one has
 * closed, or after `timeout` ms, whichever comes first.
 */
export async function closeSessions(
  sessions: Iterable<Session<object>>,
  timeout = 5000,
): Promise<void> {
  const closing = [...sessions].map((session) => {
    session.close(1001, "Server shutting down");
    return session.whenClosed();
  });
  if (closing.length === 0) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    Promise.all(closing),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeout);
    }),
  ]);
  if (timer !== undefined) clearTimeout(timer);
}
