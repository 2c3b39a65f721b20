// Bytes in JSON frames, for an app with a binary codec (MessagePack): a `Uint8Array` (any
// ArrayBuffer view, a Node Buffer included) is written `{"$bytes":"<base64>"}`, and such an
// object in a frame a client sent is read back as a `Uint8Array`. Frames travel between
// instances and sit in history as JSON text, so the text must carry bytes without loss for
// a MessagePack client to get them as bytes. Until an app with a binary codec is made,
// nothing here runs: JSON frames are written and read exactly as before.

/** The key of the object that stands for bytes in JSON. */
export const BYTES_KEY = "$bytes";

let bytesInJson = false;

/** Turns the bytes mapping on for this process (an app with a binary codec was made). */
export function writeBytesInJson(): void {
  bytesInJson = true;
}

/** Whether the mapping is on. */
export function writesBytesInJson(): boolean {
  return bytesInJson;
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const CODES = Uint8Array.from(ALPHABET, (char) => char.charCodeAt(0));
const PAD = 61; // "="
const ascii = new TextDecoder();

/** Base64 of `bytes`, written into bytes and decoded once (no string built char by char). */
function toBase64(bytes: Uint8Array): string {
  const out = new Uint8Array(Math.ceil(bytes.length / 3) * 4);
  let o = 0;
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n =
      ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number);
    out[o++] = CODES[n >> 18] as number;
    out[o++] = CODES[(n >> 12) & 63] as number;
    out[o++] = CODES[(n >> 6) & 63] as number;
    out[o++] = CODES[n & 63] as number;
  }
  if (i < bytes.length) {
    const n =
      ((bytes[i] as number) << 16) | (i + 1 < bytes.length ? (bytes[i + 1] as number) << 8 : 0);
    out[o++] = CODES[n >> 18] as number;
    out[o++] = CODES[(n >> 12) & 63] as number;
    out[o++] = i + 1 < bytes.length ? (CODES[(n >> 6) & 63] as number) : PAD;
    out[o++] = PAD;
  }
  return ascii.decode(out);
}

function fromBase64(text: string): Uint8Array | undefined {
  let binary: string;
  try {
    binary = atob(text);
  } catch {
    return undefined;
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The replacer that writes views as `{"$bytes":…}` (it looks at the value before `toJSON`). */
function replaceBytes(this: unknown, key: string, value: unknown): unknown {
  const original = (this as Record<string, unknown>)[key];
  if (ArrayBuffer.isView(original)) {
    const view = original;
    return { [BYTES_KEY]: toBase64(new Uint8Array(view.buffer, view.byteOffset, view.byteLength)) };
  }
  return value;
}

/**
 * `JSON.stringify(value)`, with bytes written as `{"$bytes":…}` when the mapping is on. The
 * plain text is made first; only text that may hold a view (`{"0":`, `{}`, or a Buffer's
 * `"type":"Buffer"`) is made again with the replacer, so a frame without bytes costs one
 * scan of its text.
 */
export function stringifyData(value: unknown): string | undefined {
  return bytesInJson ? stringifyWithBytes(value) : JSON.stringify(value);
}

/** How many values the look for bytes visits before it leaves the question to the text. */
const LOOK_BUDGET = 32;

/**
 * Whether `value` holds bytes, looking at no more than {@link LOOK_BUDGET} values:
 * `true` or `false` when it could tell, `undefined` when the value is larger than that.
 */
function holdsBytes(value: unknown): boolean | undefined {
  const pending: unknown[] = [value];
  let budget = LOOK_BUDGET;
  while (pending.length > 0) {
    const item = pending.pop();
    if (item === null || typeof item !== "object") continue;
    if (ArrayBuffer.isView(item)) return true;
    if (--budget <= 0) return undefined;
    if (Array.isArray(item)) {
      for (const element of item)
        if (element !== null && typeof element === "object") pending.push(element);
    } else {
      for (const key in item) {
        const child = (item as Record<string, unknown>)[key];
        if (child !== null && typeof child === "object") pending.push(child);
      }
    }
  }
  return false;
}

/**
 * `JSON.stringify(value)` with bytes written as `{"$bytes":…}` whatever the mapping (the
 * client's). A small value is looked through for bytes first (a frame of bytes is never
 * written as the object of indices JSON makes of it); a large one is written plainly and
 * written again with the replacer only when its text may hold a view (`{"0":`, `{}`, or a
 * Buffer's `"type":"Buffer"`).
 */
export function stringifyWithBytes(value: unknown): string | undefined {
  const holds = holdsBytes(value);
  if (holds === true) return JSON.stringify(value, replaceBytes);
  const text = JSON.stringify(value);
  if (holds === false || text === undefined) return text;
  if (!text.includes('{"0":') && !text.includes("{}") && !text.includes('"type":"Buffer"')) {
    return text;
  }
  return JSON.stringify(value, replaceBytes);
}

function reviveBytes(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const encoded = (value as Record<string, unknown>)[BYTES_KEY];
  if (typeof encoded !== "string" || Object.keys(value).length !== 1) return value;
  return fromBase64(encoded) ?? value;
}

/** `JSON.parse(text)`, with `{"$bytes":…}` read as a `Uint8Array` when the mapping is on. */
export function parseJson(text: string): unknown {
  if (!bytesInJson || !text.includes('"$bytes"')) return JSON.parse(text);
  return JSON.parse(text, reviveBytes);
}

/** `JSON.parse(text)` with `{"$bytes":…}` read as bytes whatever the mapping (the client's). */
export function parseJsonWithBytes(text: string): unknown {
  return text.includes('"$bytes"') ? JSON.parse(text, reviveBytes) : JSON.parse(text);
}
