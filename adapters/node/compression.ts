// permessage-deflate on Node: `ws` negotiates the extension and inflates what clients send
// (stopping at `maxPayload`, counted inflated); what the server sends is deflated here,
// once per frame, so that a broadcast to many subscribers costs one zlib call, not one per
// subscriber. With no context takeover on both sides, a frame's deflated bytes are the
// same for every socket that negotiated the same window, so they can be shared.

import { constants, deflateRawSync } from "node:zlib";
import type { PerMessageDeflateOptions } from "ws";
import type { Compression } from "../../src/adapter.ts";

/** `ws`'s extension options for an app's `compression`: bounded windows, no context kept. */
export function perMessageDeflateOf(compression: Compression): PerMessageDeflateOptions {
  return {
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
    serverMaxWindowBits: compression.windowBits,
    clientMaxWindowBits: compression.windowBits,
    // `ws` itself never compresses: every frame the server sends is deflated by
    // `SharedDeflate` (or goes out as it is).
    threshold: Number.MAX_SAFE_INTEGER,
  };
}

/** The WebSocket frame header of a final, compressed (RSV1) text frame of `length` bytes. */
function compressedTextHeader(length: number): Buffer {
  if (length < 126) return Buffer.from([0xc1, length]);
  if (length < 65_536) return Buffer.from([0xc1, 126, length >> 8, length & 0xff]);
  const header = Buffer.alloc(10);
  header[0] = 0xc1;
  header[1] = 127;
  header.writeBigUInt64BE(BigInt(length), 2);
  return header;
}

/**
 * Deflates the text frames an app sends, keeping the last one: the subscribers of a
 * broadcast are sent the same string one after the other, and share its bytes. What it
 * keeps is let go once per event-loop turn (`release`).
 */
export class SharedDeflate {
  /** Frames shorter than this go out as they are. */
  readonly threshold: number;
  readonly #options: { level: number; windowBits: number; finishFlush: number };
  #lastText: string | undefined = undefined;
  #lastFrame: Buffer | undefined = undefined;
  /** How many frames it deflated (tests read it). */
  deflated = 0;

  constructor(compression: Compression) {
    this.threshold = compression.threshold;
    this.#options = {
      level: compression.level,
      windowBits: compression.windowBits,
      finishFlush: constants.Z_SYNC_FLUSH,
    };
  }

  /** `text` as a whole compressed WebSocket frame (header and payload). */
  frameOf(text: string): Buffer {
    if (text === this.#lastText && this.#lastFrame) return this.#lastFrame;
    const deflated = deflateRawSync(Buffer.from(text, "utf8"), this.#options);
    // RFC 7692 §7.2.1: the trailing 0x00 0x00 0xff 0xff of the sync flush is left out.
    const payload = deflated.subarray(0, deflated.length - 4);
    const frame = Buffer.concat([compressedTextHeader(payload.length), payload]);
    this.deflated += 1;
    this.#lastText = text;
    this.#lastFrame = frame;
    return frame;
  }

  /** Lets the last frame go. */
  release(): void {
    this.#lastText = undefined;
    this.#lastFrame = undefined;
  }
}
