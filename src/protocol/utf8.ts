/** The exact byte length of `text` in UTF-8, without encoding it. */
export function utf8ByteLength(text: string): number {
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

/**
 * The byte length of `text` in UTF-8 when it may pass `limit`, else a cheap bound: UTF-8
 * takes at least one byte per UTF-16 unit and at most three, so only frames close to the
 * limit are counted exactly.
 */
export function utf8Length(text: string, limit: number): number {
  if (text.length > limit || text.length * 3 <= limit) return text.length;
  return utf8ByteLength(text);
}

/** A UTF-16 unit of a surrogate pair standing alone: `\p{Surrogate}` matches only those under `u`. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Whether `text` is well-formed Unicode: no lone surrogate (`"\uD800"` sent as a JSON
 * escape). Such a text has no UTF-8 form: a broker writes it as U+FFFD, so two names would
 * meet as one, and `encodeURIComponent` throws on it.
 */
export function isWellFormed(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}
