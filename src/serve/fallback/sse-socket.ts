// A connection's socket when WebSockets cannot pass (a proxy strips the upgrade): the
// server's frames go out as Server-Sent Events on one long HTTP response, the client's come
// in by POST (fallback-sessions.ts). To the session it is a socket like any other: it sends
// text, says how much waits unread, and closes with a code, which the client reads from the
// stream's last event.

import { OPEN, type SocketLike } from "../socket.ts";

const encoder = new TextEncoder();

/** `readyState` once closed. */
const CLOSED = 3;

/** A comment every this many ms, so that proxies (and Bun, after 10 s) do not cut a quiet stream. */
export const SSE_KEEPALIVE_MS = 5000;

/**
 * The server's side of an SSE stream as a socket. Its events wait in a queue of its own
 * until the HTTP layer pulls them, which it does only as fast as the client reads: what
 * the client has not read yet shows in `bufferedAmount`, as on a WebSocket.
 */
export class SseSocket implements SocketLike {
  readyState: number = OPEN;
  /** The response body the adapter streams to the client. */
  readonly stream: ReadableStream<Uint8Array>;
  /** Settles once everything written was pulled (after a close), or the stream ended. */
  readonly drained: Promise<void>;
  readonly #queue: Uint8Array[] = [];
  #queued = 0;
  #closing = false;
  #wake: (() => void) | undefined;
  #drained!: () => void;
  #keepalive: ReturnType<typeof setInterval> | undefined;
  /** Told once when the stream ends: closed here, or cancelled by the client going away. */
  onClosed: ((code: number, reason: string) => void) | undefined;

  constructor() {
    this.drained = new Promise((resolve) => {
      this.#drained = resolve;
    });
    this.stream = new ReadableStream<Uint8Array>(
      {
        pull: (controller) => this.#pull(controller),
        cancel: () => {
          this.#ended(1006, "");
          this.#drained();
        },
      },
      { highWaterMark: 0 },
    );
    this.#keepalive = setInterval(() => this.#write(": keepalive\n\n"), SSE_KEEPALIVE_MS);
    (this.#keepalive as { unref?: () => void }).unref?.();
  }

  get bufferedAmount(): number {
    return this.#queued;
  }

  /** Sends one event: `event` (none for a frame) and its data, a line of JSON. */
  event(data: string, event?: string): boolean {
    return this.#write(
      event === undefined ? `data: ${data}\n\n` : `event: ${event}\ndata: ${data}\n\n`,
    );
  }

  send(data: string | Uint8Array<ArrayBuffer>): boolean {
    // Binary codecs are not offered on this transport: every frame is JSON text.
    if (typeof data !== "string") return false;
    return this.event(data);
  }

  /** Ends the stream with a `close` event that carries the code and the reason. */
  close(code = 1000, reason = ""): void {
    if (this.readyState !== OPEN) return;
    this.event(JSON.stringify({ code, reason }), "close");
    this.#closing = true;
    this.#ended(code, reason);
    this.#wake?.();
  }

  terminate(): void {
    if (this.readyState !== OPEN) return;
    this.#queue.length = 0;
    this.#queued = 0;
    this.#closing = true;
    this.#ended(1006, "");
    this.#wake?.();
  }

  async #pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    while (this.#queue.length === 0 && !this.#closing) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
    this.#wake = undefined;
    const chunk = this.#queue.shift();
    if (chunk !== undefined) {
      this.#queued -= chunk.byteLength;
      controller.enqueue(chunk);
      return;
    }
    controller.close();
    this.#drained();
  }

  #write(text: string): boolean {
    if (this.readyState !== OPEN) return false;
    const chunk = encoder.encode(text);
    this.#queue.push(chunk);
    this.#queued += chunk.byteLength;
    this.#wake?.();
    return true;
  }

  #ended(code: number, reason: string): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    if (this.#keepalive !== undefined) clearInterval(this.#keepalive);
    this.onClosed?.(code, reason);
  }
}
