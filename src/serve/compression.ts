// permessage-deflate (RFC 7692), off by default: what an app's `compression` option asks
// for, resolved once. Adapters read it where their runtime negotiates the extension; the
// core never compresses or inflates anything itself.

/**
 * How frames are compressed when the client offers permessage-deflate.
 *
 * @example
 * ```ts
 * import { SocketAPI } from "socketapi";
 *
 * // Frames of 1 KiB and more go out compressed, to clients that offer it.
 * const app = new SocketAPI({ compression: { threshold: 1024 } });
 * ```
 */
export interface CompressionOptions {
  /**
   * Frames shorter than this many characters go out uncompressed (default 1024): below
   * about a kilobyte, deflate saves little and costs a zlib call.
   */
  threshold?: number | undefined;
  /**
   * The LZ77 window, as a power of two, for both directions (9 to 15, default 10: 1 KiB).
   * It bounds the zlib memory a connection that sends compressed frames holds: an inflate
   * stream of about `2 ** windowBits` plus 7 KiB (Node). A client that cannot use a window
   * this small (one that does not offer `client_max_window_bits`) is not compressed.
   */
  windowBits?: number | undefined;
  /** zlib's compression level for what the server sends (1 to 9, default 3). */
  level?: number | undefined;
}

/** `compression` resolved: every field set. */
export interface Compression {
  readonly threshold: number;
  readonly windowBits: number;
  readonly level: number;
}

/** The settings of a `compression` option; `false` when it is off (the default). */
export function resolveCompression(
  option: boolean | CompressionOptions | undefined,
): Compression | false {
  if (option === undefined || option === false) return false;
  const { threshold = 1024, windowBits = 10, level = 3 } = option === true ? {} : option;
  if (!Number.isInteger(windowBits) || windowBits < 9 || windowBits > 15) {
    throw new RangeError("compression.windowBits must be an integer from 9 to 15");
  }
  if (!Number.isInteger(level) || level < 1 || level > 9) {
    throw new RangeError("compression.level must be an integer from 1 to 9");
  }
  if (!(threshold >= 0)) throw new RangeError("compression.threshold must be 0 or more");
  return { threshold, windowBits, level };
}
