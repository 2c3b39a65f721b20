// The dashboard's token: where a request carries it, and a comparison whose time does not
// depend on the token given (both sides are hashed first: the same 32 bytes are compared,
// all of them, whatever was sent).

/** The cookie the page's token is kept in once an operator signed in. */
export const ADMIN_COOKIE = "socketapi_admin";

/** The token a request offers: `?token=`, the cookie, or `Authorization: Bearer`. */
export function offeredToken(url: URL, headers: Headers): string | undefined {
  const query = url.searchParams.get("token");
  if (query !== null) return query;
  const cookie = cookieOf(headers.get("cookie"), ADMIN_COOKIE);
  if (cookie !== undefined) return cookie;
  const authorization = headers.get("authorization");
  const bearer = authorization?.match(/^Bearer\s+(.+)$/i)?.[1];
  return bearer?.trim();
}

function cookieOf(header: string | null, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const at = part.indexOf("=");
    if (at < 0 || part.slice(0, at).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(at + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Checks tokens against one secret in constant time. */
export class TokenCheck {
  readonly #expected: Promise<Uint8Array>;

  constructor(secret: string) {
    this.#expected = digest(secret);
  }

  /** Whether `given` is the secret; its length and content do not change how long this takes. */
  async matches(given: string | undefined): Promise<boolean> {
    const [expected, actual] = await Promise.all([this.#expected, digest(given ?? "")]);
    let difference = given === undefined ? 1 : 0;
    for (let i = 0; i < expected.length; i++) difference |= (expected[i] ?? 0) ^ (actual[i] ?? 0);
    return difference === 0;
  }
}

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/** The `Set-Cookie` that keeps the token for the page's path (and its socket). */
export function tokenCookie(token: string, path: string, secure: boolean): string {
  return (
    `${ADMIN_COOKIE}=${encodeURIComponent(token)}; Path=${path}; HttpOnly; SameSite=Strict` +
    (secure ? "; Secure" : "")
  );
}
