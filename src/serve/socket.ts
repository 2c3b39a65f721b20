/**
 * The part of a WebSocket the core uses: a subset of the WHATWG `WebSocket` that `ws`,
 * Bun's `ServerWebSocket`, Deno's and Cloudflare's sockets all have.
 */
export interface SocketLike {
  /** `1` while open (`WebSocket.OPEN`). */
  readonly readyState: number;
  /** Bytes queued but not yet sent, where the runtime tells. */
  readonly bufferedAmount?: number;
  /**
   * Sends a text frame (a string), or a binary one (bytes: only to a connection that speaks
   * a binary codec). May throw when the socket is broken; returning `0` or `false` also
   * means the frame was dropped (Bun's `ServerWebSocket.send` returns `0` then).
   */
  send(data: string | Uint8Array<ArrayBuffer>): unknown;
  /** Closes the socket. */
  close(code?: number, reason?: string): void;
  /** Drops the connection without a close handshake, where the runtime can (`ws`, Bun). */
  terminate?(): void;
}

/** `WebSocket.OPEN`: the only state in which a socket can send. */
export const OPEN = 1;

/** The data of a WHATWG `MessageEvent` from a WebSocket. */
export type MessageData = string | ArrayBuffer | ArrayBufferView | Blob;
