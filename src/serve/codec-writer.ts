// The frames of a connection that speaks a binary codec (`socketapi.msgpack`): the core
// writes every frame as JSON text, once, for every subscriber and instance; a connection
// with a codec sends the same frame encoded. The subscribers of a broadcast are sent the
// same text one after the other, so the last text's bytes are kept until the end of the
// turn's synchronous work: a broadcast is encoded once per codec, not once per subscriber.

import { parseJson, writeBytesInJson } from "../protocol/bytes.ts";
import type { Codec } from "../protocol/codec.ts";

/** Encodes text frames with one codec, keeping the last. One per codec per process. */
export class CodecWriter {
  readonly codec: Codec;
  #lastText: string | undefined = undefined;
  #lastBytes: Uint8Array<ArrayBuffer> | undefined = undefined;
  #releasing = false;
  readonly #release = (): void => {
    this.#releasing = false;
    this.#lastText = undefined;
    this.#lastBytes = undefined;
  };

  constructor(codec: Codec) {
    this.codec = codec;
    // Bytes must survive the JSON text every frame is written as first.
    writeBytesInJson();
  }

  /** `text` (a frame the core wrote) in the codec. Throws when it cannot be encoded. */
  bytesOf(text: string): Uint8Array<ArrayBuffer> {
    if (text === this.#lastText && this.#lastBytes !== undefined) return this.#lastBytes;
    const bytes = this.codec.encode(parseJson(text));
    this.#lastText = text;
    this.#lastBytes = bytes;
    if (!this.#releasing) {
      this.#releasing = true;
      queueMicrotask(this.#release);
    }
    return bytes;
  }
}

const writers = new WeakMap<Codec, CodecWriter>();

/** The writer of `codec`, made once. */
export function writerOf(codec: Codec): CodecWriter {
  let writer = writers.get(codec);
  if (!writer) {
    writer = new CodecWriter(codec);
    writers.set(codec, writer);
  }
  return writer;
}
