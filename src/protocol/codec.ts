// A binary encoding of the protocol's frames, offered by a client as a subprotocol of its
// own (`socketapi.msgpack`). The frames are the same as in JSON, field for field; only
// their encoding differs, and JSON stays the default: a client that offers no codec's
// subprotocol is spoken to in JSON text, as always.

/**
 * An encoding of frames as binary WebSocket messages. `socketapi/msgpack` exports the one
 * SocketAPI ships (`msgpack`); an app lists the codecs it speaks in its `codecs` option,
 * and the typed client takes the one it offers as its `codec` option.
 *
 * @example
 * ```ts
 * import { SocketAPI } from "socketapi";
 * import { msgpack } from "socketapi/msgpack";
 *
 * const app = new SocketAPI({ codecs: [msgpack] });
 * ```
 */
export interface Codec {
  /** The subprotocol a client offers to speak it, e.g. `socketapi.msgpack`. */
  readonly protocol: string;
  /** Its name in error messages: `Invalid MessagePack.` */
  readonly name: string;
  /** One frame (a plain object) as bytes. Throws when the value cannot be encoded. */
  encode(frame: unknown): Uint8Array<ArrayBuffer>;
  /** One binary message as the value it encodes. Throws when the bytes are malformed. */
  decode(bytes: Uint8Array): unknown;
}
