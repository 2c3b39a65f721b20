import { CloseCode } from "../protocol/protocol.ts";
import { OPEN, type SocketLike } from "./socket.ts";

/** What writing a frame came to: sent, dropped (the socket is gone), or sent to a slow reader. */
export type Written = "sent" | "dropped" | "slow";

/**
 * Writes one frame to a socket (text; bytes for a connection that speaks a binary codec). A client that stops reading makes its send buffer
 * grow; past `maxBufferedBytes` the frame is still written but the answer is `slow`, and
 * the caller cuts the client off, so that one slow reader never holds unbounded memory.
 * Throws when the socket's `send` throws.
 */
export function writeFrame(
  socket: SocketLike,
  frame: string | Uint8Array<ArrayBuffer>,
  maxBufferedBytes: number,
): Written {
  if (socket.readyState !== OPEN) return "dropped";
  const sent = socket.send(frame);
  // Bun's `send` returns 0 for a frame it dropped.
  if (sent === 0 || sent === false) return "dropped";
  const buffered = socket.bufferedAmount;
  return buffered !== undefined && buffered > maxBufferedBytes ? "slow" : "sent";
}

/**
 * Closes a slow consumer's socket with 1013. A client that does not read will not read
 * the close frame either, so its socket is dropped a second later where the runtime can
 * (`terminate`), freeing what it buffered.
 */
export function closeSlowConsumer(socket: SocketLike): void {
  socket.close(CloseCode.tryAgainLater, "Slow consumer");
  if (!socket.terminate) return;
  const timer = setTimeout(() => socket.terminate?.(), 1000);
  (timer as { unref?: () => void }).unref?.();
}
