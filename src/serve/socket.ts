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
   * Sends a text frame. May throw when the socket is broken; returning `0` or `false`
   * also means the frame was dropped (Bun's `ServerWebSocket.send` returns `0` then).
   */
  send(data: string): unknown;
  /** Closes the socket. */
  close(code?: number, reason?: string): void;
  /** Drops the connection without a close handshake, where the runtime can (`ws`, Bun). */
  terminate?(): void;
}

/** `WebSocket.OPEN`: the only state in which a socket can send. */
export const OPEN = 1;

/** The data of a WHATWG `MessageEvent` from a WebSocket. */
export type MessageData = string | ArrayBuffer | ArrayBufferView | Blob;

/**
 * The byte length of `text` in UTF-8 when it may pass `limit`, else a cheap lower bound:
 * only frames close to the limit are counted exactly.
 */
export function utf8Length(text: string, limit: number): number {
  // UTF-8 takes at least one byte per UTF-16 unit and at most three.
  if (text.length > limit || text.length * 3 <= limit) return text.length;
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}
