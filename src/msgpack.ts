/**
 * MessagePack for SocketAPI's frames: a client that offers the `socketapi.msgpack`
 * subprotocol is spoken to in binary frames, the same protocol field for field, encoded
 * with `msgpackr` (an optional dependency: `npm install msgpackr`; importing this entry
 * loads it, nothing else does). `Uint8Array` payloads travel as MessagePack bytes, not as
 * base64. JSON stays the default: a client that does not offer it never sees a binary
 * frame. Measured against `@msgpack/msgpack` in bench/WIRE.md.
 *
 * @example
 * ```ts
 * import { SocketAPI } from "socketapi";
 * import { msgpack } from "socketapi/msgpack";
 *
 * // The server: JSON for every client, MessagePack for those that offer it.
 * const app = new SocketAPI({ codecs: [msgpack] });
 * ```
 *
 * @module
 */
import { Packr } from "msgpackr";
import type { Codec } from "./protocol/codec.ts";

/** The subprotocol a client offers to be spoken to in MessagePack. */
export const MSGPACK_PROTOCOL = "socketapi.msgpack";

// Plain maps as objects (never records, which only msgpackr reads); 64-bit integers as
// numbers, as JSON has them; `__proto__` keys are read as data by msgpackr, never as the
// prototype.
const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  int64AsType: "number",
  moreTypes: false,
});

/**
 * The MessagePack codec: give it to the app's `codecs` and the typed client's `codec`.
 *
 * @example
 * ```ts
 * import { createClient } from "socketapi/client";
 * import { msgpack } from "socketapi/msgpack";
 *
 * // The client: offers socketapi.msgpack, and speaks JSON to a server that does not.
 * const client = createClient("ws://127.0.0.1:8000/", { codec: msgpack });
 * ```
 */
export const msgpack: Codec = {
  protocol: MSGPACK_PROTOCOL,
  name: "MessagePack",
  // Bytes of an ArrayBuffer of its own (never a SharedArrayBuffer).
  encode: (frame) => packr.pack(frame) as Uint8Array<ArrayBuffer>,
  decode: (bytes) => packr.unpack(bytes),
};
