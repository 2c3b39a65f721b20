/** The client's options, and the WebSocket it works with. */
import type { Codec } from "../protocol/codec.ts";
import type { ReconnectOptions } from "./backoff.ts";

// Event handler types are left open so that every WebSocket class fits: the browser's,
// Bun's, Deno's, and `ws`'s, whose events are its own classes.
// biome-ignore lint/suspicious/noExplicitAny: see above.
type Handler = ((event: any) => void) | null;

/** The part of a WHATWG `WebSocket` the client uses; `ws`'s class fits too. */
export interface ClientSocket {
  readonly readyState: number;
  /** The subprotocol the server chose (`socketapi`, a codec's, or none). */
  readonly protocol?: string;
  send(data: string | Uint8Array<ArrayBuffer>): void;
  close(code?: number, reason?: string): void;
  /** Called when the connection opens. */
  onopen: Handler;
  /** Called with `{ data }` for each frame. */
  onmessage: Handler;
  /** Called with `{ code, reason }` when the connection closes. */
  onclose: Handler;
  /** Called when the connection fails; a close follows. */
  onerror: Handler;
}

/** A WebSocket constructor: the global one, or `ws`'s on Node 20. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => ClientSocket;

/**
 * Where the connection is: `connecting` (an attempt is under way), `open`, `reconnecting`
 * (it dropped or an attempt failed; the next attempt is at `nextAttempt`) or `closed`
 * (for good: `close()`, a refusal that will not change, `maxAttempts` spent, or
 * `reconnect: false`).
 */
export type ConnectionStatus = "connecting" | "open" | "reconnecting" | "closed";

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** The WebSocket class; default `globalThis.WebSocket` (browsers, Bun, Deno, Node 22+). */
  WebSocket?: WebSocketConstructor | undefined;
  /** WebSocket subprotocols to ask for. */
  protocols?: string | string[] | undefined;
  /**
   * A binary codec to offer (`msgpack` of `socketapi/msgpack`): spoken when the server
   * chooses its subprotocol, else the connection stays JSON (a server without it).
   * `Uint8Array`s in frames travel as bytes in it; in JSON as `{"$bytes": base64}`.
   *
   * @example
   * ```ts
   * import { createClient } from "socketapi/client";
   * import { msgpack } from "socketapi/msgpack";
   *
   * const client = createClient("ws://127.0.0.1:8000/", { codec: msgpack });
   * ```
   */
  codec?: Codec | undefined;
  /**
   * When the WebSocket cannot open (a proxy strips the upgrade, the socket never opens)
   * and not because the server refused it, connect over Server-Sent Events and HTTP POST
   * instead, to a server with `fallback` on (the same app and protocol), and try the
   * WebSocket again after `retryWebSocket` ms (default 60,000). Default off.
   *
   * @example
   * ```ts
   * import { createClient } from "socketapi/client";
   *
   * const client = createClient("wss://api.example.com/", { fallback: true });
   * ```
   */
  fallback?:
    | boolean
    | {
        retryWebSocket?: number | undefined;
        /** The `fetch` it uses; default the global one. */
        fetch?: typeof fetch | undefined;
      }
    | undefined;
  /**
   * The credential the server's `onConnect` reads as `credential.token`: a string, or a
   * callback asked at every connect and refresh. It travels in `Sec-WebSocket-Protocol`
   * (what a browser can set; a URL would put it in every proxy's access log), never in the
   * URL. When the server says the credential expires, the client sends a fresh one ahead
   * of time (a `refresh` frame, for a server with `onRefresh`); a connection closed at its
   * expiry (4001) reconnects with a fresh token.
   */
  token?: string | (() => string | Promise<string>) | undefined;
  /** How long a request waits for its answer, in ms (default 10,000). */
  timeout?: number | undefined;
  /** Reconnection with backoff and jitter after a drop; `false` turns it off. */
  reconnect?: ReconnectOptions | false | undefined;
  /**
   * Sends `{"type":"ping"}` every `interval` ms (default 25,000) and drops the connection
   * (then reconnects) when nothing arrives within `timeout` ms (default 10,000); `false`
   * turns it off.
   */
  heartbeat?: { interval?: number | undefined; timeout?: number | undefined } | false | undefined;
  /**
   * Send request ids (default `true`). Answers without ids (SocketAPI 0.2 in Python) are
   * matched in order either way; turn this off only for a server that refuses unknown keys.
   */
  ids?: boolean | undefined;
}

/** Ends a subscription's listener; the subscription ends with its last listener. */
export interface Unsubscribe {
  (): Promise<void>;
  /** Resolves once the server confirmed the subscription; rejects if it refused it. */
  readonly ready: Promise<void>;
}
