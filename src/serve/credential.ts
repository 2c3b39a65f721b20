// The credential a client offers with its upgrade: in `Sec-WebSocket-Protocol` (what a
// browser can set), an `Authorization: Bearer` header, or the URL's `token` parameter.
import type { UpgradeRequest } from "../context.ts";
import {
  MAX_TOKEN_BYTES,
  SOCKETAPI_PROTOCOL,
  TOKEN_PROTOCOL_PREFIX,
} from "../protocol/protocol.ts";
import { KeptRequest } from "./kept-request.ts";

/** Where a connection's token came from. */
export type TokenSource = "protocol" | "authorization" | "query" | "refresh";

/**
 * What `onConnect` and `onRefresh` learn of the client's credential, and where they say
 * when it stops authorizing the connection.
 *
 * @example
 * ```ts
 * const app = new SocketAPI({
 *   onConnect: (request, credential) => {
 *     const user = sessions.get(credential.token ?? "");
 *     if (!user) return new Response("Unauthorized", { status: 401 });
 *     credential.expiresAt = user.expiresAt; // closed with 4001 then, unless refreshed
 *     return { user: user.name };
 *   },
 * });
 * ```
 */
export interface Credential {
  /**
   * The token the client offered: in `Sec-WebSocket-Protocol` (the typed client's `token`
   * option: what browsers can send without putting it in the URL), else an
   * `Authorization: Bearer` header, else the URL's `token` parameter; in `onRefresh`, the
   * token of the `refresh` frame. `undefined` when there is none.
   */
  readonly token: string | undefined;
  /** Where {@link token} came from; `undefined` when there is none. */
  readonly source: TokenSource | undefined;
  /**
   * When the credential stops authorizing the connection, in milliseconds since the epoch
   * (a `Date` is taken too). Past it, a connection that no refresh moved it for is closed
   * with 4001 `Token expired`. `undefined` (the default): never.
   */
  expiresAt: number | Date | undefined;
}

/** The credential `onRefresh` sees: the `refresh` frame's token, always there. */
export interface RefreshedCredential extends Credential {
  readonly token: string;
  readonly source: "refresh";
}

/** What an upgrade offered, read once by the admission. */
export interface Offer {
  /**
   * The subprotocol to answer with: a codec's (`socketapi.msgpack`) when the client offered
   * one the app speaks, else `socketapi` when the client offered it.
   */
  readonly protocol: string | undefined;
  /** The token offered in `Sec-WebSocket-Protocol`, decoded. */
  readonly protocolToken: string | undefined;
}

/** An upgrade refused for what it offered: the status and the text of the refusal. */
export interface OfferRefusal {
  readonly status: 400 | 431;
  readonly message: string;
}

const NO_OFFER: Offer = { protocol: undefined, protocolToken: undefined };

/** The refusals, with their exact texts (docs/connections.md lists them). */
export const OfferRefused = {
  tooLong: {
    status: 431,
    message: `Token too long: at most ${MAX_TOKEN_BYTES} bytes.`,
  },
  withoutProtocol: {
    status: 400,
    message: `A token in Sec-WebSocket-Protocol needs the '${SOCKETAPI_PROTOCOL}' protocol beside it.`,
  },
  twoTokens: { status: 400, message: "Offer one token, not two." },
  malformed: { status: 400, message: "Malformed token in Sec-WebSocket-Protocol." },
  twice: {
    status: 400,
    message:
      "Offer the token once: in Sec-WebSocket-Protocol, not also in the URL or Authorization.",
  },
} as const satisfies Record<string, OfferRefusal>;

/**
 * Reads what the client offered in `Sec-WebSocket-Protocol`: whether it speaks `socketapi`
 * (or one of `codecs`, the subprotocols of the app's codecs: the first the client offered
 * wins) and the token it carries there. A request without the header costs one header
 * lookup.
 */
export function readOffer(
  request: UpgradeRequest,
  codecs: readonly string[] = [],
): Offer | OfferRefusal {
  const header = headerOf(request, "sec-websocket-protocol");
  if (header === null || header === undefined) return NO_OFFER;
  let protocol: typeof SOCKETAPI_PROTOCOL | undefined;
  let codec: string | undefined;
  let encoded: string | undefined;
  for (const item of header.split(",")) {
    const entry = item.trim();
    if (entry === SOCKETAPI_PROTOCOL) protocol = SOCKETAPI_PROTOCOL;
    else if (codec === undefined && codecs.includes(entry)) codec = entry;
    else if (entry.startsWith(TOKEN_PROTOCOL_PREFIX)) {
      if (encoded !== undefined) return OfferRefused.twoTokens;
      encoded = entry.slice(TOKEN_PROTOCOL_PREFIX.length);
    }
  }
  const chosen = codec ?? protocol;
  if (encoded === undefined)
    return chosen === undefined ? NO_OFFER : { protocol: chosen, protocolToken: undefined };
  // base64url without padding: 4 characters per 3 bytes.
  if (encoded.length > Math.ceil((MAX_TOKEN_BYTES * 4) / 3)) return OfferRefused.tooLong;
  if (chosen === undefined) return OfferRefused.withoutProtocol;
  const token = decodeToken(encoded);
  if (token === undefined) return OfferRefused.malformed;
  if (token !== "" && (bearerOf(request) !== undefined || queryTokenOf(request) !== undefined)) {
    return OfferRefused.twice;
  }
  return { protocol: chosen, protocolToken: token };
}

/** Whether a read offer is a refusal. */
export function isRefusal(offer: Offer | OfferRefusal): offer is OfferRefusal {
  return "status" in offer;
}

/**
 * The credential `onConnect` sees: the token read on first use (the URL and the
 * `Authorization` header only when asked for), and the expiry it may set.
 */
export class ConnectCredential implements Credential {
  readonly #request: UpgradeRequest;
  readonly #protocolToken: string | undefined;
  #read = false;
  #token: string | undefined;
  #source: TokenSource | undefined;
  expiresAt: number | Date | undefined = undefined;

  constructor(request: UpgradeRequest, protocolToken: string | undefined) {
    this.#request = request;
    this.#protocolToken = protocolToken;
  }

  get token(): string | undefined {
    this.#readToken();
    return this.#token;
  }

  get source(): TokenSource | undefined {
    this.#readToken();
    return this.#source;
  }

  #readToken(): void {
    if (this.#read) return;
    this.#read = true;
    if (this.#protocolToken !== undefined) {
      this.#token = this.#protocolToken;
      this.#source = "protocol";
      return;
    }
    const bearer = bearerOf(this.#request);
    if (bearer !== undefined) {
      this.#token = bearer;
      this.#source = "authorization";
      return;
    }
    const query = queryTokenOf(this.#request);
    if (query !== undefined) {
      this.#token = query;
      this.#source = "query";
    }
  }
}

/** The credential `onRefresh` sees: the refresh frame's token, and the expiry it may set. */
export class RefreshCredential implements RefreshedCredential {
  readonly token: string;
  readonly source = "refresh" as const;
  expiresAt: number | Date | undefined = undefined;

  constructor(token: string) {
    this.token = token;
  }
}

/** An expiry as milliseconds since the epoch; `undefined` for none or for what is not a time. */
export function expiryOf(expiresAt: number | Date | undefined): number | undefined {
  const at = expiresAt instanceof Date ? expiresAt.getTime() : expiresAt;
  return typeof at === "number" && Number.isFinite(at) ? at : undefined;
}

/**
 * The request a connection keeps for `ctx.request`: without the token it offered in
 * `Sec-WebSocket-Protocol` (only the protocol chosen is left there), so that no handler, log or
 * stored attachment holds it. A request that offered none is kept as it is.
 */
export function withoutProtocolToken(request: UpgradeRequest, offer: Offer): UpgradeRequest {
  if (offer.protocolToken === undefined) return request;
  return KeptRequest.of(request, ["sec-websocket-protocol", offer.protocol ?? SOCKETAPI_PROTOCOL]);
}

/** A token from its base64url; `undefined` when it is not base64url of UTF-8. */
function decodeToken(encoded: string): string | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(encoded) || encoded.length % 4 === 1) return undefined;
  try {
    const binary = atob(encoded.replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** The token of an `Authorization: Bearer` header, if any. */
function bearerOf(request: UpgradeRequest): string | undefined {
  const header = headerOf(request, "authorization");
  if (!header) return undefined;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  return match?.[1];
}

/** The URL's `token` parameter, if any. */
function queryTokenOf(request: UpgradeRequest): string | undefined {
  const url = request.url;
  // Most upgrades have no query: no URL is parsed for them.
  if (!url.includes("token=")) return undefined;
  try {
    return new URL(url).searchParams.get("token") ?? undefined;
  } catch {
    return undefined;
  }
}

/** A header, read without making a kept request parse all of its headers. */
function headerOf(request: UpgradeRequest, name: string): string | null | undefined {
  return request instanceof KeptRequest ? request.header(name) : request.headers.get(name);
}
