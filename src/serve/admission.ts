import type { ErrorInfo, UpgradeRequest } from "../context.ts";
import { isThenable } from "../thenable.ts";
import {
  ConnectCredential,
  type Credential,
  expiryOf,
  isRefusal,
  type Offer,
  readOffer,
  withoutProtocolToken,
} from "./credential.ts";
import { type ResolvedRateLimit, TokenBucket } from "./rate-limiter.ts";
import { refusalOf } from "./request-router.ts";

/**
 * A place among the app's `maxConnections`, held from the moment an upgrade is admitted
 * until its socket opens (opening takes it over) or the adapter gives up on it.
 */
export interface ConnectionSlot {
  /** Gives the place back: the upgrade will not become a connection. Idempotent. */
  release(): void;
}

/**
 * The outcome of `onConnect` for one upgrade request. `state` is `undefined` when
 * `onConnect` returned nothing: the connection then gets `{}` on first use. An admitted
 * upgrade holds a `slot` until its socket opens, or the adapter releases it.
 */
export type Admission<State> =
  | {
      ok: true;
      state: State | undefined;
      slot: ConnectionSlot;
      /**
       * The subprotocol the 101 must answer with (`Sec-WebSocket-Protocol`): a codec's
       * (`socketapi.msgpack`) when the client offered one the app speaks, else `socketapi`
       * when the client offered it, else none.
       */
      protocol: string | undefined;
      /**
       * The request the connection keeps for `ctx.request`: the upgrade's, without the
       * token the client offered in `Sec-WebSocket-Protocol`.
       */
      request: UpgradeRequest;
      /** When the credential expires (ms since the epoch), as `onConnect` said; else none. */
      expiresAt: number | undefined;
    }
  | { ok: false; response: Response };

/** What decides who may connect: the app's options for it. */
export interface AdmissionRules<State> {
  onConnect?:
    | ((
        request: UpgradeRequest,
        credential: Credential,
      ) => State | Response | undefined | Promise<State | Response | undefined>)
    | undefined;
  allowedOrigins?: readonly string[] | ((origin: string) => boolean) | undefined;
  /** The app's codecs, whose subprotocols a client may offer. */
  codecs?: readonly { readonly protocol: string }[] | undefined;
}

function admitted<State>(
  state: State | undefined,
  slot: ConnectionSlot,
  request: UpgradeRequest,
  offer: Offer,
  expiresAt: number | undefined,
): Admission<State> {
  const kept = withoutProtocolToken(request, offer);
  return { ok: true, state, slot, protocol: offer.protocol, request: kept, expiresAt };
}

/** A slot never opened nor released (an adapter lost the upgrade) stops counting after this. */
const SLOT_LIFETIME_MS = 60_000;

class Slot implements ConnectionSlot {
  readonly taken = Date.now();
  readonly #slots: Set<Slot>;

  constructor(slots: Set<Slot>) {
    this.#slots = slots;
    slots.add(this);
  }

  release(): void {
    this.#slots.delete(this);
  }
}

/**
 * Who may connect to an app: the origin allowlist, the connection limit (counting upgrades
 * still waiting for an async `onConnect`), and `onConnect` itself. Never throws: a hook
 * that throws, or returns what cannot be read, refuses with 500 and is reported.
 */
export class Admissions<State> {
  readonly #rules: AdmissionRules<State>;
  readonly #codecProtocols: readonly string[];
  readonly #maxConnections: number;
  /** Upgrades admitted per second (`connectRate`), when limited. */
  readonly #connects: TokenBucket | undefined;
  readonly #report: (error: unknown, info: ErrorInfo) => void;
  /** Told of each upgrade a limit refused, for the app's metrics. */
  readonly #refused: (limit: "origin" | "connections" | "connect_rate") => void;
  /** Upgrades admitted whose sockets have not opened yet: they count as connections. */
  readonly #slots = new Set<Slot>();
  #warnedAboutCookies = false;

  constructor(
    rules: AdmissionRules<State>,
    limits: { readonly maxConnections: number; readonly connectRate: ResolvedRateLimit | false },
    report: (error: unknown, info: ErrorInfo) => void,
    refused: (limit: "origin" | "connections" | "connect_rate") => void = () => {},
  ) {
    this.#rules = rules;
    this.#codecProtocols = (rules.codecs ?? []).map((codec) => codec.protocol);
    this.#maxConnections = limits.maxConnections;
    this.#connects = limits.connectRate ? new TokenBucket(limits.connectRate) : undefined;
    this.#report = report;
    this.#refused = refused;
  }

  /**
   * Runs the upgrade's checks (origin, connection limit) and `onConnect`; `open` is how
   * many connections are open now. Synchronous unless `onConnect` is async.
   */
  admit(request: UpgradeRequest, open: number): Admission<State> | Promise<Admission<State>> {
    try {
      // Only read when an allowlist is set: adapters may build `headers` on first use.
      const origin =
        this.#rules.allowedOrigins === undefined ? null : request.headers.get("origin");
      if (origin !== null && !this.#originAllowed(origin)) {
        this.#refused("origin");
        return { ok: false, response: new Response("Origin not allowed", { status: 403 }) };
      }
      const offer = readOffer(request, this.#codecProtocols);
      if (isRefusal(offer)) {
        return { ok: false, response: new Response(offer.message, { status: offer.status }) };
      }
      if (open + this.#waiting() >= this.#maxConnections) {
        this.#refused("connections");
        return { ok: false, response: refusalOf("too-many-connections") };
      }
      if (this.#connects && !this.#connects.take()) {
        this.#refused("connect_rate");
        return { ok: false, response: refusalOf("too-many-connects") };
      }
      const slot = new Slot(this.#slots);
      const { onConnect } = this.#rules;
      // Without onConnect (or with a synchronous one) the answer is immediate: upgrades
      // need no promise.
      if (!onConnect) return admitted(undefined, slot, request, offer, undefined);
      const credential = new ConnectCredential(request, offer.protocolToken);
      let outcome: unknown;
      try {
        outcome = onConnect(this.#watchedForCookies(request), credential);
        if (isThenable(outcome)) {
          return Promise.resolve(outcome).then(
            (settled) => this.#admission(settled, slot, request, offer, credential),
            (error: unknown) => this.#connectFailed(error, slot),
          );
        }
      } catch (error) {
        return this.#connectFailed(error, slot);
      }
      return this.#admission(outcome, slot, request, offer, credential);
    } catch (error) {
      return this.#connectFailed(error, undefined);
    }
  }

  /** Admitted upgrades not yet open, forgetting slots an adapter lost. */
  #waiting(): number {
    if (this.#slots.size > 0) {
      const stale = Date.now() - SLOT_LIFETIME_MS;
      for (const slot of this.#slots) if (slot.taken < stale) slot.release();
    }
    return this.#slots.size;
  }

  #admission(
    outcome: unknown,
    slot: Slot,
    request: UpgradeRequest,
    offer: Offer,
    credential: Credential,
  ): Admission<State> {
    try {
      if (outcome instanceof Response) {
        slot.release();
        return { ok: false, response: outcome };
      }
    } catch (error) {
      return this.#connectFailed(error, slot);
    }
    const state = (outcome ?? undefined) as State | undefined;
    return admitted(state, slot, request, offer, expiryOf(credential.expiresAt));
  }

  #connectFailed(error: unknown, slot: Slot | undefined): Admission<State> {
    slot?.release();
    this.#report(error, { phase: "connect" });
    return { ok: false, response: new Response("Internal Server Error", { status: 500 }) };
  }

  #originAllowed(origin: string): boolean {
    const allowed = this.#rules.allowedOrigins;
    if (allowed === undefined) return true;
    return typeof allowed === "function" ? allowed(origin) : allowed.includes(origin);
  }

  /**
   * The request `onConnect` sees. While no `allowedOrigins` is set, its headers are
   * watched until `onConnect` first reads `Cookie`: then any web page could open a
   * connection with the user's cookies (cross-site WebSocket hijacking), and the app is
   * told so once, loudly.
   */
  #watchedForCookies(request: UpgradeRequest): UpgradeRequest {
    if (this.#rules.allowedOrigins !== undefined || this.#warnedAboutCookies) return request;
    const warn = (): void => {
      if (this.#warnedAboutCookies) return;
      this.#warnedAboutCookies = true;
      console.warn(
        "[socketapi] onConnect reads cookies, but allowedOrigins is not set: any web page the " +
          "user visits can open a connection that carries the user's cookies (cross-site " +
          "WebSocket hijacking). Set allowedOrigins to the origins of your pages; see " +
          "docs/security.md.",
      );
    };
    let headers: Headers | undefined;
    return {
      get url() {
        return request.url;
      },
      get headers() {
        headers ??= new Proxy(request.headers, {
          get(target, key) {
            const value = Reflect.get(target, key, target);
            if (typeof value !== "function") return value;
            if (key === "get" || key === "has" || key === "getSetCookie") {
              return (name: string) => {
                if (String(name).toLowerCase() === "cookie") warn();
                return value.call(target, name);
              };
            }
            return value.bind(target);
          },
        });
        return headers;
      },
    };
  }
}
