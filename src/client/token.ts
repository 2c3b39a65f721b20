// The client's credential: offered in `Sec-WebSocket-Protocol` (off the URL, where proxies
// would log it), and refreshed over the open socket before it expires.
import type { Codec } from "../protocol/codec.ts";
import { SOCKETAPI_PROTOCOL, TOKEN_PROTOCOL_PREFIX } from "../protocol/protocol.ts";

/** Where the client gets its token: a string, or a callback asked at every connect and refresh. */
export type TokenSource = string | (() => string | Promise<string>);

/**
 * The subprotocols to offer: the codec's first (`socketapi.msgpack`), `socketapi` and the
 * token's entry, then the app's own.
 */
export function tokenProtocols(
  token: string,
  own: string | string[] | undefined,
  codec?: Codec,
): string[] {
  const extra = own === undefined ? [] : typeof own === "string" ? [own] : own;
  const first = codec === undefined ? [] : [codec.protocol];
  return [...first, SOCKETAPI_PROTOCOL, `${TOKEN_PROTOCOL_PREFIX}${encodeToken(token)}`, ...extra];
}

/**
 * The subprotocols to offer without a token: the app's own; with a codec, its subprotocol
 * and `socketapi` first, so that a server without the codec answers `socketapi` (JSON).
 */
export function offeredProtocols(
  own: string | string[] | undefined,
  codec: Codec | undefined,
): string | string[] | undefined {
  if (codec === undefined) return own;
  const extra = own === undefined ? [] : typeof own === "string" ? [own] : own;
  return [codec.protocol, SOCKETAPI_PROTOCOL, ...extra];
}

/** The base64url (unpadded) of a token's UTF-8. */
export function encodeToken(token: string): string {
  const bytes = new TextEncoder().encode(token);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Asks the source for a token; a callback that throws rejects. */
export async function tokenOf(source: TokenSource): Promise<string> {
  const token = typeof source === "string" ? source : await source();
  if (typeof token !== "string" || token === "") {
    throw new TypeError("The token callback must return a non-empty string.");
  }
  return token;
}

/** The id the client's refresh frames carry, which no request of the app uses. */
export const REFRESH_ID_PREFIX = "socketapi:refresh:";

/**
 * How long before the credential expires the client refreshes it: a fifth of its life, at
 * most a minute, at least a tenth of a second.
 */
export function refreshLead(expiresIn: number): number {
  return Math.max(100, Math.min(expiresIn / 5, 60_000));
}
