/**
 * JSON Web Tokens for `onConnect` and `onRefresh`, without hand-written crypto: verified
 * with `jose` (an optional dependency, loaded on first use: `npm install jose`), which runs
 * on Node, Bun, Deno and Workers. A token is checked against a secret, a public key or a
 * JWKS URL (cached; fetched again for a key id it does not know), with `exp`, `nbf`, `iss`
 * and `aud` checked and a clock skew allowed; its `exp` becomes the connection's expiry.
 * Nothing here logs or echoes a token.
 *
 * @example
 * ```ts
 * import { SocketAPI } from "socketapi";
 * import { jwtAuth } from "socketapi/jwt";
 *
 * const app = new SocketAPI({
 *   ...jwtAuth({
 *     secret: process.env.JWT_SECRET ?? "",
 *     issuer: "https://auth.example.com",
 *     audience: "chat",
 *     state: (claims) => ({ user: String(claims.sub) }),
 *   }),
 *   userId: (connection) => connection.state.user,
 * });
 * ```
 *
 * @module
 */
import type { Connection, UpgradeRequest } from "./context.ts";
import { UnauthorizedError } from "./errors.ts";
import { loadOptional } from "./optional.ts";
import type { Credential, RefreshedCredential } from "./serve/credential.ts";

/** The claims of a verified token: the registered ones, and whatever else it carries. */
export interface JwtClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
  iat?: number;
  jti?: string;
  [claim: string]: unknown;
}

/** What to verify tokens against, and what they must say. */
export interface JwtOptions {
  /** A shared secret (HS256, HS384, HS512). */
  secret?: string | Uint8Array | undefined;
  /**
   * A public key: a `CryptoKey`, or a PEM (`-----BEGIN PUBLIC KEY-----`, SPKI) with its
   * algorithm in `algorithms` (its first).
   */
  publicKey?: CryptoKey | string | undefined;
  /**
   * A JWKS URL (`https://auth.example.com/.well-known/jwks.json`): its keys are cached and
   * fetched again when a token names a key id they do not hold (at most every
   * `jwksCooldown`).
   */
  jwks?: string | URL | undefined;
  /** The least time between two fetches of the JWKS, in ms (default 30,000). */
  jwksCooldown?: number | undefined;
  /** The algorithms accepted; default: those of the key given (never `none`). */
  algorithms?: string[] | undefined;
  /** The `iss` a token must have. */
  issuer?: string | string[] | undefined;
  /** The `aud` a token must have (one of). */
  audience?: string | string[] | undefined;
  /** How far apart the clocks may be, in seconds, for `exp` and `nbf` (default 5). */
  clockTolerance?: number | undefined;
  /** Whether a token without `exp` is refused (default `true`: a token should expire). */
  requireExpiry?: boolean | undefined;
}

/** A verified token: its claims, and when it expires (ms since the epoch). */
export interface VerifiedToken {
  claims: JwtClaims;
  expiresAt: number | undefined;
}

/** Why a token was refused, in words that do not repeat it. */
export type TokenProblem =
  | "missing"
  | "malformed"
  | "expired"
  | "not-yet-valid"
  | "claims"
  | "signature";

/** A refused token: its `problem`, and a message that is safe to send (no token in it). */
export class TokenError extends Error {
  readonly problem: TokenProblem;

  constructor(problem: TokenProblem) {
    super(TOKEN_MESSAGES[problem]);
    this.name = "TokenError";
    this.problem = problem;
  }
}

const TOKEN_MESSAGES: Record<TokenProblem, string> = {
  missing: "Missing token.",
  malformed: "Malformed token.",
  expired: "Token expired.",
  "not-yet-valid": "Token not valid yet.",
  claims: "Token refused: its claims do not match.",
  signature: "Invalid token.",
};

type Jose = typeof import("jose");

/**
 * Makes a verifier of tokens: resolves to the claims and the expiry, or rejects with a
 * {@link TokenError}. Made once, it keeps the key (and the JWKS cache).
 *
 * @example
 * ```ts
 * const verify = jwtVerifier({ jwks: "https://auth.example.com/.well-known/jwks.json" });
 * const { claims, expiresAt } = await verify(token);
 * ```
 */
export function jwtVerifier(
  options: JwtOptions,
): (token: string | undefined) => Promise<VerifiedToken> {
  const given = [options.secret, options.publicKey, options.jwks].filter((k) => k !== undefined);
  if (given.length !== 1) {
    throw new TypeError("socketapi/jwt: give exactly one of secret, publicKey and jwks.");
  }
  let prepared:
    | Promise<{ jose: Jose; key: Parameters<Jose["jwtVerify"]>[1]; algorithms: string[] }>
    | undefined;
  const prepare = async () => {
    const jose = await loadOptional<Jose>("jose", "socketapi/jwt", () => import("jose"));
    if (options.secret !== undefined) {
      const key =
        typeof options.secret === "string"
          ? new TextEncoder().encode(options.secret)
          : options.secret;
      return { jose, key, algorithms: options.algorithms ?? ["HS256", "HS384", "HS512"] };
    }
    if (options.jwks !== undefined) {
      const url = options.jwks instanceof URL ? options.jwks : new URL(options.jwks);
      const key = jose.createRemoteJWKSet(url, {
        cooldownDuration: options.jwksCooldown ?? 30_000,
      });
      return { jose, key, algorithms: options.algorithms ?? ASYMMETRIC };
    }
    const publicKey = options.publicKey as CryptoKey | string;
    if (typeof publicKey === "string") {
      const algorithm = options.algorithms?.[0];
      if (!algorithm) {
        throw new TypeError("socketapi/jwt: a PEM public key needs its algorithm in `algorithms`.");
      }
      return {
        jose,
        key: await jose.importSPKI(publicKey, algorithm),
        algorithms: options.algorithms ?? [algorithm],
      };
    }
    return { jose, key: publicKey, algorithms: options.algorithms ?? ASYMMETRIC };
  };
  return async (token) => {
    if (token === undefined || token === "") throw new TokenError("missing");
    prepared ??= prepare();
    const { jose, key, algorithms } = await prepared;
    let payload: JwtClaims;
    try {
      const verified = await jose.jwtVerify(token, key as Parameters<Jose["jwtVerify"]>[1], {
        algorithms: algorithms.filter((algorithm) => algorithm.toLowerCase() !== "none"),
        ...(options.issuer !== undefined && { issuer: options.issuer }),
        ...(options.audience !== undefined && { audience: options.audience }),
        clockTolerance: options.clockTolerance ?? 5,
        ...((options.requireExpiry ?? true) && { requiredClaims: ["exp"] }),
      });
      payload = verified.payload as JwtClaims;
    } catch (error) {
      // Only the token's faults refuse it; a JWKS that cannot be fetched is the server's
      // (a 500, which clients retry), not a reason to tell them their token is bad.
      const problem = problemOf(error);
      if (problem === undefined) throw error;
      throw new TokenError(problem);
    }
    return {
      claims: payload,
      expiresAt: typeof payload.exp === "number" ? payload.exp * 1000 : undefined,
    };
  };
}

/** The asymmetric algorithms accepted by default with a public key or a JWKS. */
const ASYMMETRIC = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
];

/**
 * What jose's error says of a token, without its text; `undefined` for a failure that is
 * not the token's (the JWKS unreachable or invalid).
 */
function problemOf(error: unknown): TokenProblem | undefined {
  const code = (error as { code?: unknown }).code;
  const claim = (error as { claim?: unknown }).claim;
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return "expired";
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      return claim === "nbf" ? "not-yet-valid" : "claims";
    case "ERR_JWS_INVALID":
    case "ERR_JWT_INVALID":
      return "malformed";
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
    case "ERR_JWKS_NO_MATCHING_KEY":
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
    case "ERR_JOSE_ALG_NOT_ALLOWED":
    case "ERR_JOSE_NOT_SUPPORTED":
      return "signature";
    default:
      return undefined;
  }
}

/** Options of {@link jwtAuth}: the verifier's, and the connection's state from the claims. */
export interface JwtAuthOptions<State extends object> extends JwtOptions {
  /** The connection's state from a verified token's claims. */
  state: (claims: JwtClaims, request: UpgradeRequest | undefined) => State | Promise<State>;
}

/**
 * `onConnect` and `onRefresh` for an app whose clients log in with a JWT (the typed
 * client's `token` option): the token is verified, the state made from its claims, and the
 * connection expires with the token (`exp`). A missing, malformed, expired or wrongly
 * signed token (`alg: none` included) is refused with 401 and a fixed text at connect,
 * and answered `UNAUTHORIZED` at refresh. A refresh may not change the user (the app's
 * `userId`).
 *
 * @example
 * ```ts
 * const app = new SocketAPI({
 *   ...jwtAuth({ jwks: "https://auth.example.com/.well-known/jwks.json", state: (claims) => ({ user: String(claims.sub) }) }),
 *   userId: (connection) => connection.state.user,
 * });
 * ```
 */
export function jwtAuth<State extends object>(
  options: JwtAuthOptions<State>,
): {
  onConnect: (request: UpgradeRequest, credential: Credential) => Promise<State | Response>;
  onRefresh: (credential: RefreshedCredential, connection: Connection<State>) => Promise<State>;
} {
  const verify = jwtVerifier(options);
  return {
    onConnect: async (request, credential) => {
      let verified: VerifiedToken;
      try {
        verified = await verify(credential.token);
      } catch (error) {
        if (error instanceof TokenError) {
          return new Response(error.message, {
            status: 401,
            headers: { "www-authenticate": "Bearer" },
          });
        }
        throw error;
      }
      credential.expiresAt = verified.expiresAt;
      return options.state(verified.claims, request);
    },
    onRefresh: async (credential) => {
      let verified: VerifiedToken;
      try {
        verified = await verify(credential.token);
      } catch (error) {
        if (error instanceof TokenError) throw new UnauthorizedError(error.message);
        throw error;
      }
      credential.expiresAt = verified.expiresAt;
      return options.state(verified.claims, undefined);
    },
  };
}
