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

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
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

/** `JSON.stringify(value)` with bytes written as `{"$bytes":…}` whatever the mapping (the client's). */
export function stringifyWithBytes(value: unknown): string | undefined {
  const text = JSON.stringify(value);
  if (text === undefined) return text;
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
