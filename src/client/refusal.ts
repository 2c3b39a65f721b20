/**
 * What a failed WebSocket handshake tells about its cause. Runtimes differ: `ws` says
 * "Unexpected server response: 401", Bun "Expected 101 status code: 401", Deno "Invalid
 * status code: 401"; browsers and Node 22's global WebSocket say nothing (measured here).
 */
export interface HandshakeFailure {
  /** The HTTP status the server answered the upgrade with, where the runtime tells it. */
  readonly status: number | undefined;
  /** The body of that answer, where the runtime exposes it (`ws`), cut to 200 characters. */
  readonly reason: string;
}

const STATUS_IN_MESSAGE = /(?:server response|status code)\D{0,3}([1-5]\d\d)\b/i;

/** The status a runtime's error event names, if it names one. */
export function statusOfErrorEvent(event: unknown): number | undefined {
  const candidates = [
    (event as { message?: unknown } | null)?.message,
    (event as { error?: { message?: unknown } } | null)?.error?.message,
  ];
  for (const text of candidates) {
    if (typeof text !== "string") continue;
    const match = STATUS_IN_MESSAGE.exec(text);
    if (match) return Number(match[1]);
  }
  return undefined;
}

/**
 * Whether a refusal with this status may go away by itself, so that retrying makes sense:
 * server errors, 408 (timeout), 425 and 429 (too early, too many requests) may; a 401, 403
 * or 404 will not until something else changes (a new token, another URL).
 */
export function isRetryableStatus(status: number | undefined): boolean {
  if (status === undefined) return true;
  if (status >= 500) return true;
  return status === 408 || status === 425 || status === 429;
}

/** The part of `ws`'s client socket that shows a refused upgrade's response. */
interface NodeStyleSocket {
  once(
    event: "unexpected-response",
    listener: (request: unknown, response: NodeStyleResponse) => void,
  ): unknown;
  terminate(): void;
}

interface NodeStyleResponse {
  readonly statusCode?: number;
  setEncoding?(encoding: string): void;
  on(event: "data", listener: (chunk: string) => void): unknown;
  on(event: "end" | "error" | "close", listener: () => void): unknown;
  destroy?(): void;
}

function isNodeStyleSocket(socket: unknown): socket is NodeStyleSocket {
  return (
    typeof (socket as Partial<NodeStyleSocket>).once === "function" &&
    typeof (socket as Partial<NodeStyleSocket>).terminate === "function"
  );
}

/**
 * On `ws` (Node 20), reads a refused upgrade's status and body (at most 1 KiB) and then
 * ends the attempt, calling `record` before the socket's close event. Elsewhere it does
 * nothing: the status comes from the error event.
 */
export function watchRefusal(socket: unknown, record: (failure: HandshakeFailure) => void): void {
  if (!isNodeStyleSocket(socket)) return;
  socket.once("unexpected-response", (_request, response) => {
    let body = "";
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      record({ status: response.statusCode, reason: body.trim().slice(0, 200) });
      response.destroy?.();
      socket.terminate();
    };
    response.setEncoding?.("utf8");
    response.on("data", (chunk: string) => {
      if (body.length < 1024) body += chunk;
      if (body.length >= 1024) finish();
    });
    response.on("end", finish);
    response.on("close", finish);
    response.on("error", finish);
  });
}
