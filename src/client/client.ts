import { parseJsonWithBytes, stringifyWithBytes } from "../protocol/bytes.ts";
import type { Codec } from "../protocol/codec.ts";
import type { RequestId, WireIssue } from "../protocol/protocol.ts";
import { RESET_AFTER_MS, reconnectDelay } from "./backoff.ts";
import { ClientErrorCode, SocketAPIClientError } from "./client-error.ts";
import type {
  ClientOptions,
  ClientSocket,
  ConnectionStatus,
  Unsubscribe,
  WebSocketConstructor,
} from "./client-options.ts";
import type {
  ActionsOf,
  CallArgs,
  ChannelFor,
  ChannelName,
  ChannelsOf,
  Member,
  Received,
  ReceivedChunk,
  RequestOptions,
  SubscribeArgs,
  SubscriptionHandlers,
  SubscriptionListener,
} from "./client-types.ts";
import { FallbackSocket } from "./fallback-socket.ts";
import { Heartbeat } from "./heartbeat.ts";
import {
  type HandshakeFailure,
  isRetryableStatus,
  statusOfErrorEvent,
  watchRefusal,
} from "./refusal.ts";
import { type Pending, type Position, Requests } from "./requests.ts";
import { type ActionStream, StreamReader } from "./stream-reader.ts";
import { type CallListener, Subscription } from "./subscription.ts";
import {
  offeredProtocols,
  REFRESH_ID_PREFIX,
  refreshLead,
  tokenOf,
  tokenProtocols,
} from "./token.ts";

const PING = { type: "ping" } as const;

/** The longest delay a timer takes (2^31 - 1 ms); longer waits are re-armed. */
const MAX_TIMER_MS = 2_147_483_647;

/** An error's message, or the thrown value as text. */
function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The error a request cancelled by `signal` rejects with. */
function cancelledBy(signal: AbortSignal, channel: string): SocketAPIClientError {
  return new SocketAPIClientError(ClientErrorCode.CANCELLED, "The request was cancelled.", {
    channel,
    cause: signal.reason,
  });
}

/** What a socket's handlers become once the client lets go of it: errors are swallowed. */
function ignore(): void {}

/**
 * A SocketAPI client, typed by the server's app: action names, inputs and outputs, channel
 * names and their data are checked at compile time. Create it with {@link createClient}.
 */
export class SocketAPIClient<App = unknown> {
  readonly url: string;
  readonly #options: ClientOptions;
  readonly #WebSocket: WebSocketConstructor;
  #socket: ClientSocket | undefined;
  #status: ConnectionStatus = "connecting";
  readonly #statusListeners = new Set<(status: ConnectionStatus) => void>();
  readonly #errorListeners = new Set<(error: SocketAPIClientError) => void>();
  readonly #requests: Requests;
  readonly #subscriptions = new Map<string, Subscription>();
  #closedByUser = false;
  /** Set when the server refused the upgrade for good: the client no longer reconnects. */
  #refusal: SocketAPIClientError | undefined;
  /** Whether the current socket opened, and what its handshake's failure said if not. */
  #socketOpened = false;
  /** The codec the open connection speaks (the server chose its subprotocol); else JSON. */
  #speaking: Codec | undefined;
  /** The `fallback` option, resolved; `undefined` without it. */
  readonly #fallback: { retryWebSocket: number; fetch: typeof fetch | undefined } | undefined;
  /** Whether the next attempts go over SSE and POST (the WebSocket could not open). */
  #onFallback = false;
  #fallbackTimer: ReturnType<typeof setTimeout> | undefined;
  #handshakeFailure: HandshakeFailure | undefined;
  #attempt = 0;
  /** When the scheduled attempt starts, while reconnecting. */
  #nextAttempt: number | undefined;
  /** Starts the waits again from the first once a connection stayed open long enough. */
  #stableTimer: ReturnType<typeof setTimeout> | undefined;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #heartbeat: Heartbeat;
  /** Which connect asked the token callback last: an older answer is dropped. */
  #tokenAttempt = 0;
  /** When the client refreshes its credential, as the server's `expiry` said. */
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshCount = 0;
  #refreshing:
    | {
        id: string;
        answer: Promise<void>;
        resolve: () => void;
        reject: (error: SocketAPIClientError) => void;
        timeout: ReturnType<typeof setTimeout>;
      }
    | undefined;
  /** Calls a listener of the app; what it throws goes to `onError`. */
  readonly #call: CallListener = (listener, value, extra) =>
    this.#callListener(listener, value, extra);

  constructor(url: string, options: ClientOptions = {}) {
    this.url = url;
    this.#options = options;
    const ctor =
      options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!ctor) {
      throw new TypeError(
        'socketapi/client: no WebSocket here. Pass one: createClient(url, { WebSocket }) with `import WebSocket from "ws"` on Node 20.',
      );
    }
    this.#WebSocket = ctor;
    const { fallback } = options;
    this.#fallback = fallback
      ? {
          retryWebSocket: (fallback === true ? undefined : fallback.retryWebSocket) ?? 60_000,
          fetch: fallback === true ? undefined : fallback.fetch,
        }
      : undefined;
    this.#requests = new Requests({
      ids: options.ids !== false,
      timeout: options.timeout ?? 10_000,
    });
    this.#heartbeat = new Heartbeat(
      options.heartbeat,
      () => this.#send(PING),
      () => this.#deadConnection(),
    );
    if (options.token !== undefined) {
      // The socket opens once the token is known.
      this.#connect();
      return;
    }
    // A URL the runtime refuses at once is the caller's mistake: it throws here.
    this.#socket = new ctor(url, options.protocols);
    this.#watch(this.#socket);
  }

  /** Where the connection is: `connecting`, `open`, `reconnecting` or `closed` (for good). */
  get status(): ConnectionStatus {
    return this.#status;
  }

  /**
   * While `reconnecting`, when the next attempt starts (ms since the epoch, as `Date.now()`);
   * otherwise `undefined`.
   *
   * @example
   * ```ts
   * client.onStatus((status) => {
   *   if (status === "reconnecting") {
   *     const seconds = Math.ceil(((client.nextAttempt ?? Date.now()) - Date.now()) / 1000);
   *     console.log(`offline: retrying in ${seconds} s`);
   *   }
   * });
   * ```
   */
  get nextAttempt(): number | undefined {
    return this.#status === "reconnecting" ? this.#nextAttempt : undefined;
  }

  /** Calls `listener` whenever the connection's status changes; returns a way to stop. */
  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    this.#statusListeners.add(listener);
    return () => this.#statusListeners.delete(listener);
  }

  /** Calls `listener` with errors no request awaits: a resubscribe the server refused, a bad frame. */
  onError(listener: (error: SocketAPIClientError) => void): () => void {
    this.#errorListeners.add(listener);
    return () => this.#errorListeners.delete(listener);
  }

  /** Resolves when the connection is open (at once if it is). */
  opened(): Promise<void> {
    if (this.#status === "open") return Promise.resolve();
    if (this.#refusal) return Promise.reject(this.#refusal);
    if (this.#closedByUser) {
      return Promise.reject(
        new SocketAPIClientError(ClientErrorCode.CLOSED, "The client was closed."),
      );
    }
    return new Promise((resolve, reject) => {
      const stop = this.onStatus((status) => {
        if (status === "open") {
          stop();
          resolve();
        } else if (this.#refusal) {
          stop();
          reject(this.#refusal);
        } else if (this.#closedByUser) {
          stop();
          reject(new SocketAPIClientError(ClientErrorCode.CLOSED, "The client was closed."));
        }
      });
    });
  }

  /**
   * Calls an action and resolves with its result; rejects with a
   * {@link SocketAPIClientError} (the server's code, message and issues, or `TIMEOUT`,
   * `DISCONNECTED`, `CLOSED`, `CANCELLED`). A `signal` cancels it: the server stops its
   * handler. Of a streaming action it resolves with what the stream returned at its end
   * (read the chunks with {@link stream}).
   *
   * @example
   * ```ts
   * const sum = await client.action("add_numbers", { a: 5, b: 3 }); // number
   * const report = await client.action("export", { year: 2026 }, { signal: AbortSignal.timeout(5000) });
   * ```
   */
  action<TName extends keyof ActionsOf<App> & string>(
    name: TName,
    ...args: CallArgs<ActionsOf<App>[TName]["input"]>
  ): Promise<Received<ActionsOf<App>[TName]["output"]>> {
    const [input, options] = args as unknown as [unknown, RequestOptions | undefined];
    return this.#request("action", name, input, undefined, undefined, options?.signal) as Promise<
      Received<ActionsOf<App>[TName]["output"]>
    >;
  }

  /**
   * Calls a streaming action (a handler that returns an async iterable) and reads its
   * answer as it comes: `for await` gives each chunk in order, `result` what the handler
   * returned. Leaving the loop early, `cancel()` or the `signal` cancel it on the server;
   * a stream the connection dropped under fails with `DISCONNECTED` (never resumed).
   *
   * @example
   * ```ts
   * const reply = client.stream("ask", { question: "Why is the sky blue?" });
   * for await (const word of reply) console.log(word);
   * ```
   */
  stream<TName extends keyof ActionsOf<App> & string>(
    name: TName,
    ...args: CallArgs<ActionsOf<App>[TName]["input"]>
  ): ActionStream<
    ReceivedChunk<ActionsOf<App>[TName]["chunk"]>,
    Received<ActionsOf<App>[TName]["output"]>
  > {
    const [input, options] = args as unknown as [unknown, RequestOptions | undefined];
    return new StreamReader(
      (onChunk, signal) =>
        this.#request("action", name, input, undefined, undefined, signal, onChunk),
      options?.signal,
    );
  }

  /**
   * Subscribes to a channel (a plain name or a concrete form of a template, `rooms/42`);
   * `listener` receives every data frame, initial data included. Listeners of one channel
   * share one subscription; it is sent again, with its parameters, after a reconnect. On a
   * channel with history, the broadcasts missed while the connection was down come first
   * (`info.recovered`), or `reset` runs when they cannot (docs/recovery.md).
   *
   * @example
   * ```ts
   * const stop = client.subscribe("chat", (data) => console.log(data.message));
   * await stop.ready;
   * await stop();
   * const feed = client.subscribe("chat", {
   *   data: (data, info) => console.log(data.message, info.recovered ? "(missed)" : ""),
   *   reset: () => console.log("missed too much: reload"),
   * });
   * await feed();
   * ```
   */
  subscribe<TName extends ChannelName<ChannelsOf<App>>>(
    name: TName,
    ...args: SubscribeArgs<ChannelFor<ChannelsOf<App>, TName>>
  ): Unsubscribe {
    const given = (args.length === 1 ? args[0] : args[1]) as SubscriptionListener<unknown>;
    // One listener per call, so that its unsubscribe takes its own away (a presence-only
    // subscription has no data listener: a stand-in that ignores the data counts for it).
    const listener = typeof given === "function" ? given : (given.data ?? (() => {}));
    const handlers = typeof given === "function" ? undefined : given;
    const reset = handlers?.reset;
    const presence = handlers && (handlers.members || handlers.join || handlers.leave);
    const params = (args.length === 1 ? undefined : args[0]) as Record<string, unknown> | undefined;
    let record = this.#subscriptions.get(name);
    const fresh = !record;
    if (!record) {
      record = new Subscription(params, this.#call);
      this.#subscriptions.set(name, record);
    }
    record.listeners.add(listener);
    if (reset) record.resets.add(reset);
    if (presence) record.presence.add(handlers as SubscriptionHandlers<unknown>);
    if (fresh) this.#sendSubscribe(name, record);
    // The first listener to want presence on a subscription made without it: asked again.
    else if (presence && !record.askedPresence && record.confirmed) {
      this.#sendSubscribe(name, record, false);
    }
    const current = record;
    const unsubscribe = async (): Promise<void> => {
      current.listeners.delete(listener);
      if (reset) current.resets.delete(reset);
      if (presence) current.presence.delete(handlers as SubscriptionHandlers<unknown>);
      if (current.listeners.size > 0 || this.#subscriptions.get(name) !== current) return;
      this.#subscriptions.delete(name);
      if (current.confirmed && this.#status === "open") {
        await this.#request("unsubscribe", name, undefined);
      }
    };
    const taken = record;
    return Object.defineProperty(unsubscribe, "ready", {
      enumerable: true,
      get: () => {
        taken.readyTaken = true;
        return taken.ready;
      },
    }) as Unsubscribe;
  }

  /**
   * Closes the connection for good: no reconnect; pending requests fail with `CLOSED`.
   * Safe in every state, also while the socket is still connecting.
   */
  close(): void {
    this.#closedByUser = true;
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#stableTimer);
    clearTimeout(this.#fallbackTimer);
    this.#heartbeat.stop();
    this.#endRefresh(ClientErrorCode.CLOSED, "The client was closed.");
    this.#failPending(() => true, ClientErrorCode.CLOSED, "The client was closed.");
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket) {
      this.#detach(socket);
      try {
        // `ws` aborts a socket closed while connecting with an 'error' event, which ends
        // the process when nobody listens: the detached socket keeps a listener that
        // ignores it.
        if (socket.readyState <= 1) socket.close(1000, "Client closed");
      } catch {
        // A socket that cannot be closed is dropped all the same.
      }
    }
    this.#setStatus("closed");
  }

  #connect(): void {
    this.#setStatus("connecting");
    this.#socketOpened = false;
    this.#handshakeFailure = undefined;
    const source = this.#options.token;
    if (source === undefined) {
      this.#openSocket(offeredProtocols(this.#options.protocols, this.#options.codec), undefined);
      return;
    }
    const attempt = ++this.#tokenAttempt;
    // A callback that never answers is a failed attempt after the request timeout.
    const wait = this.#options.timeout ?? 10_000;
    const late = setTimeout(() => {
      if (attempt !== this.#tokenAttempt || this.#closedByUser) return;
      this.#tokenAttempt++;
      this.#tokenFailed(`The token callback did not answer within ${wait} ms.`, undefined);
    }, wait);
    tokenOf(source).then(
      (token) => {
        clearTimeout(late);
        if (attempt !== this.#tokenAttempt || this.#closedByUser) return;
        this.#openSocket(
          tokenProtocols(token, this.#options.protocols, this.#options.codec),
          token,
        );
      },
      (error: unknown) => {
        clearTimeout(late);
        if (attempt !== this.#tokenAttempt || this.#closedByUser) return;
        this.#tokenFailed(`The token callback failed: ${messageOf(error)}`, error);
      },
    );
  }

  /** The token callback failed or did not answer: a failed attempt, retried with backoff. */
  #tokenFailed(message: string, cause: unknown): void {
    this.#emitError(
      new SocketAPIClientError(
        ClientErrorCode.CONNECT_FAILED,
        message,
        cause === undefined ? {} : { cause },
      ),
    );
    this.#retry();
  }

  #openSocket(protocols: string | string[] | undefined, token: string | undefined): void {
    let socket: ClientSocket;
    try {
      socket = this.#onFallback
        ? new FallbackSocket(this.url, { token, fetch: this.#fallback?.fetch })
        : new this.#WebSocket(this.url, protocols);
    } catch (error) {
      // Refused by the runtime when it worked before (a blocked port): a failed attempt.
      this.#emitError(
        new SocketAPIClientError(
          ClientErrorCode.SOCKET_FAILED,
          `The runtime could not open a WebSocket: ${messageOf(error)}`,
          { cause: error },
        ),
      );
      this.#retry();
      return;
    }
    this.#socket = socket;
    // Binary frames (a codec's) as bytes at once, where the socket can say so.
    if ("binaryType" in socket) (socket as { binaryType: string }).binaryType = "arraybuffer";
    this.#watch(socket);
  }

  /** Listens to a new socket's events. */
  #watch(socket: ClientSocket): void {
    socket.onopen = () => this.#opened();
    socket.onmessage = (event) => this.#received(event.data);
    socket.onclose = () => this.#dropped(socket);
    socket.onerror = (event) => {
      // A failed connection also closes: `onclose` decides what comes next.
      const status = statusOfErrorEvent(event);
      if (!this.#socketOpened && status !== undefined && !this.#handshakeFailure) {
        this.#handshakeFailure = { status, reason: "" };
      }
    };
    watchRefusal(socket, (failure) => {
      if (socket === this.#socket) this.#handshakeFailure = failure;
    });
    if (socket instanceof FallbackSocket) {
      socket.onrefused = (failure) => {
        if (socket === this.#socket) this.#handshakeFailure = failure;
      };
    }
  }

  #opened(): void {
    this.#socketOpened = true;
    // The server chose the codec's subprotocol, or spoke JSON (an older server).
    const codec = this.#options.codec;
    this.#speaking = codec && this.#socket?.protocol === codec.protocol ? codec : undefined;
    // Not at once: a server that accepts and closes at once would be retried at full speed.
    const reconnect = this.#options.reconnect;
    this.#stableTimer = setTimeout(
      () => {
        this.#attempt = 0;
      },
      (reconnect || undefined)?.resetAfter ?? RESET_AFTER_MS,
    );
    this.#setStatus("open");
    this.#heartbeat.start();
    // On the fallback: the WebSocket is tried again after a while (a network that blocked
    // it may not any more); the subscriptions move over as after any reconnect.
    if (this.#onFallback && this.#fallback) {
      const socket = this.#socket;
      this.#fallbackTimer = setTimeout(() => {
        this.#onFallback = false;
        if (socket === this.#socket) socket?.close(1000, "Trying the WebSocket again");
      }, this.#fallback.retryWebSocket);
    }
    for (const pending of this.#requests.unsent()) this.#transmit(pending);
    for (const [name, record] of this.#subscriptions) {
      if (!record.confirmed && !record.inFlight) this.#sendSubscribe(name, record);
    }
  }

  #dropped(socket: ClientSocket): void {
    if (socket !== this.#socket) return;
    clearTimeout(this.#fallbackTimer);
    this.#detach(socket);
    this.#socket = undefined;
    clearTimeout(this.#stableTimer);
    this.#heartbeat.stop();
    this.#endRefresh(ClientErrorCode.DISCONNECTED, "The connection dropped before the refresh.");
    // Requests already sent may or may not have been served: fail them, never resend.
    this.#failPending(
      (p) => p.sent,
      ClientErrorCode.DISCONNECTED,
      "The connection dropped before the answer.",
    );
    for (const record of this.#subscriptions.values()) record.confirmed = false;
    if (this.#closedByUser) return;
    if (!this.#socketOpened && this.#fellBack()) return;
    if (!this.#socketOpened && this.#connectFailed()) return;
    this.#retry();
  }

  /**
   * A WebSocket that never opened, and not because the server refused it (no status, or
   * 426 from a proxy that stripped the upgrade): with `fallback`, the next attempt goes
   * over SSE and POST, at once. Says whether it fell back.
   */
  #fellBack(): boolean {
    if (!this.#fallback || this.#onFallback) return false;
    const status = this.#handshakeFailure?.status;
    if (status !== undefined && status !== 426) return false;
    this.#onFallback = true;
    this.#connect();
    return true;
  }

  /**
   * A socket closed before it opened. Tells `onError` why; a refusal that will not change
   * by itself (401, 403, 404, ...) ends the client: every request fails with `REFUSED`.
   * Returns whether the client stopped.
   */
  #connectFailed(): boolean {
    const failure = this.#handshakeFailure;
    const status = failure?.status;
    const detail =
      status === undefined ? "" : `: HTTP ${status}${failure?.reason ? ` ${failure.reason}` : ""}`;
    if (isRetryableStatus(status)) {
      this.#emitError(
        new SocketAPIClientError(
          ClientErrorCode.CONNECT_FAILED,
          `The connection could not be opened${detail}.`,
          { status },
        ),
      );
      return false;
    }
    const refusal = new SocketAPIClientError(
      ClientErrorCode.REFUSED,
      `The server refused the connection${detail}.`,
      { status },
    );
    this.#refusal = refusal;
    this.#closedByUser = true;
    this.#setStatus("closed");
    this.#requests.fail(
      () => true,
      (pending) =>
        new SocketAPIClientError(refusal.code, refusal.message, {
          status,
          channel: pending.channel,
        }),
    );
    this.#emitError(refusal);
    return true;
  }

  /** Schedules the next connection attempt, or gives up after `maxAttempts`. */
  #retry(): void {
    const options = this.#options.reconnect;
    if (
      options === false ||
      (options?.maxAttempts !== undefined && this.#attempt >= options.maxAttempts)
    ) {
      // For good: nothing will try again.
      this.#setStatus("closed");
      this.#failPending(() => true, ClientErrorCode.DISCONNECTED, "The connection is closed.");
      return;
    }
    const delay = reconnectDelay(this.#attempt++, options);
    this.#nextAttempt = Date.now() + delay;
    this.#setStatus("reconnecting");
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
  }

  #detach(socket: ClientSocket): void {
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    socket.onerror = ignore;
  }

  #received(received: unknown): void {
    this.#heartbeat.heard();
    let data: string;
    if (typeof received === "string") data = received;
    else if (this.#speaking && received instanceof ArrayBuffer) {
      this.#receivedDecoded(this.#speaking, new Uint8Array(received));
      return;
    } else if (this.#speaking && ArrayBuffer.isView(received)) {
      const view = received;
      this.#receivedDecoded(
        this.#speaking,
        new Uint8Array(view.buffer, view.byteOffset, view.byteLength),
      );
      return;
    } else return;
    let value: unknown;
    try {
      value = parseJsonWithBytes(data);
    } catch (error) {
      this.#emitError(
        new SocketAPIClientError(
          ClientErrorCode.INVALID_FRAME,
          `Not a SocketAPI frame (not JSON): ${data.slice(0, 100)}`,
          { cause: error },
        ),
      );
      return;
    }
    this.#route(value, () => data.slice(0, 100));
  }

  /** A binary frame of the codec the connection speaks, decoded and routed. */
  #receivedDecoded(codec: Codec, bytes: Uint8Array): void {
    let value: unknown;
    try {
      value = codec.decode(bytes);
    } catch (error) {
      this.#emitError(
        new SocketAPIClientError(
          ClientErrorCode.INVALID_FRAME,
          `Not a SocketAPI frame (not ${codec.name}): ${bytes.byteLength} bytes`,
          { cause: error },
        ),
      );
      return;
    }
    this.#route(value, () => `${bytes.byteLength} bytes of ${codec.name}`);
  }

  /** A frame from the server, to the request, subscription or stream it is for. */
  #route(value: unknown, shown: () => string): void {
    const frame = value as {
      type?: unknown;
      channel?: unknown;
      id?: RequestId;
      data?: unknown;
      offset?: unknown;
      epoch?: unknown;
      code?: string;
      message?: string;
      issues?: WireIssue[];
      expiresIn?: unknown;
    };
    if (frame === null || typeof frame !== "object") {
      this.#emitError(
        new SocketAPIClientError(
          ClientErrorCode.INVALID_FRAME,
          `Not a SocketAPI frame: ${shown()}`,
        ),
      );
      return;
    }
    if (frame.type === "data" && typeof frame.channel === "string") {
      this.#subscriptions
        .get(frame.channel)
        ?.data(frame.channel, frame.data, frame.offset, frame.epoch);
      return;
    }
    if (frame.type === "pong") return;
    if (frame.type === "expiry") {
      this.#expiresIn(frame.expiresIn);
      return;
    }
    if (typeof frame.id === "string" && frame.id.startsWith(REFRESH_ID_PREFIX)) {
      this.#refreshAnswered(frame);
      return;
    }
    if (frame.type === "chunk") {
      const streaming = this.#requests.streaming(frame.channel, frame.id);
      if (streaming) this.#requests.chunk(streaming, frame.data);
      return;
    }
    if ((frame.type === "join" || frame.type === "leave") && typeof frame.channel === "string") {
      this.#subscriptions.get(frame.channel)?.presenceEvent(frame.type, frame as unknown as Member);
      return;
    }
    const pending = this.#requests.match(frame.type, frame.channel, frame.id);
    if (!pending) return;
    this.#requests.settle(pending);
    if (frame.type === "error") {
      pending.reject(
        new SocketAPIClientError(frame.code ?? "ERROR", frame.message ?? "Error", {
          issues: frame.issues,
          channel: typeof frame.channel === "string" ? frame.channel : pending.channel,
        }),
      );
    } else {
      // At once: the missed broadcasts that follow may be in the same read from the socket.
      const record = pending.type === "subscribe" && this.#subscriptions.get(pending.channel);
      if (record) record.positioned(pending.channel, frame);
      pending.resolve(frame.data);
    }
  }

  #request(
    type: Pending["type"],
    channel: string,
    data: unknown,
    since?: Position,
    presence?: boolean,
    signal?: AbortSignal,
    onChunk?: (data: unknown) => void,
  ): Promise<unknown> {
    if (this.#refusal) {
      const { code, message, status } = this.#refusal;
      return Promise.reject(new SocketAPIClientError(code, message, { status, channel }));
    }
    if (this.#closedByUser) {
      return Promise.reject(
        new SocketAPIClientError(ClientErrorCode.CLOSED, "The client was closed.", { channel }),
      );
    }
    if (signal?.aborted) return Promise.reject(cancelledBy(signal, channel));
    const { pending, answer } = this.#requests.make(type, channel, data, since, presence, onChunk);
    if (this.#status === "open") this.#transmit(pending);
    if (!signal) return answer;
    const cancel = (): void => {
      // Sent: the server is told (it answers CANCELLED, which nothing waits for any more).
      if (pending.sent && pending.id !== undefined && this.#status === "open") {
        this.#send({ type: "cancel", channel, id: pending.id });
      }
      this.#requests.settle(pending);
      pending.reject(cancelledBy(signal, channel));
    };
    signal.addEventListener("abort", cancel, { once: true });
    const forget = (): void => signal.removeEventListener("abort", cancel);
    answer.then(forget, forget);
    return answer;
  }

  /**
   * Sends a fresh token from the `token` option over the open socket (a `refresh` frame),
   * for a server with `onRefresh`; resolves once the server took it. The client does it by
   * itself ahead of the expiry the server told it: call it after the user's credentials
   * changed (a new role, a renewed session).
   *
   * @example
   * ```ts
   * const client = createClient<typeof app>(url, { token: () => auth.currentToken() });
   * await client.refresh();
   * ```
   */
  async refresh(): Promise<void> {
    const source = this.#options.token;
    if (source === undefined) {
      throw new TypeError("refresh() needs the client's `token` option.");
    }
    if (this.#closedByUser) {
      throw new SocketAPIClientError(ClientErrorCode.CLOSED, "The client was closed.");
    }
    if (this.#refreshing) return this.#refreshing.answer;
    let resolve!: () => void;
    let reject!: (error: SocketAPIClientError) => void;
    const answer = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Ended while the token callback runs (a close, a drop): not an unhandled rejection.
    answer.catch(() => {});
    const id = `${REFRESH_ID_PREFIX}${++this.#refreshCount}`;
    const timeout = setTimeout(
      () => this.#endRefresh(ClientErrorCode.TIMEOUT, "The refresh got no answer in time."),
      this.#options.timeout ?? 10_000,
    );
    this.#refreshing = { id, answer, resolve, reject, timeout };
    let token: string;
    try {
      token = await tokenOf(source);
    } catch (error) {
      this.#endRefresh(
        ClientErrorCode.CONNECT_FAILED,
        `The token callback failed: ${messageOf(error)}`,
      );
      return answer;
    }
    if (this.#refreshing?.id !== id) return answer;
    if (this.#status !== "open") {
      this.#endRefresh(ClientErrorCode.DISCONNECTED, "The connection is not open.");
      return answer;
    }
    this.#send({ type: "refresh", token, id });
    return answer;
  }

  /** The server said when the credential expires: refresh ahead of it. */
  #expiresIn(expiresIn: unknown): void {
    clearTimeout(this.#refreshTimer);
    if (typeof expiresIn !== "number" || this.#options.token === undefined) return;
    this.#refreshAt(Date.now() + Math.max(0, expiresIn - refreshLead(expiresIn)));
  }

  /** Refreshes at `at` (ms since the epoch); a wait past a timer's reach is re-armed. */
  #refreshAt(at: number): void {
    const wait = at - Date.now();
    this.#refreshTimer = setTimeout(
      () => {
        if (Date.now() < at) {
          this.#refreshAt(at);
          return;
        }
        this.refresh().catch((error: unknown) => {
          // Refused or lost: the server closes at the expiry (4001), and the client
          // reconnects with a fresh token.
          if (error instanceof SocketAPIClientError) this.#emitError(error);
        });
      },
      Math.min(Math.max(0, wait), MAX_TIMER_MS),
    );
  }

  #refreshAnswered(frame: {
    type?: unknown;
    id?: RequestId;
    code?: string;
    message?: string;
    expiresIn?: unknown;
  }): void {
    const refreshing = this.#refreshing;
    if (!refreshing || refreshing.id !== frame.id) return;
    this.#refreshing = undefined;
    clearTimeout(refreshing.timeout);
    if (frame.type === "refreshed") {
      refreshing.resolve();
      this.#expiresIn(frame.expiresIn);
    } else {
      refreshing.reject(
        new SocketAPIClientError(frame.code ?? "ERROR", frame.message ?? "Refresh refused."),
      );
    }
  }

  /** Ends the refresh in flight, if any, with an error of the client's; stops the schedule. */
  #endRefresh(code: string, message: string): void {
    clearTimeout(this.#refreshTimer);
    const refreshing = this.#refreshing;
    if (!refreshing) return;
    this.#refreshing = undefined;
    clearTimeout(refreshing.timeout);
    refreshing.reject(new SocketAPIClientError(code, message));
  }

  #transmit(pending: Pending): void {
    pending.sent = true;
    this.#send(pending.frame);
  }

  /**
   * Sends a frame, as JSON text or in the codec the connection speaks; a socket that throws
   * (closing under our feet) is left to its close event.
   */
  #send(frame: Record<string, unknown>): void {
    try {
      const codec = this.#speaking;
      this.#socket?.send(codec ? codec.encode(frame) : (stringifyWithBytes(frame) as string));
    } catch (error) {
      this.#emitError(
        new SocketAPIClientError(
          ClientErrorCode.SOCKET_FAILED,
          `The socket refused a frame: ${messageOf(error)}`,
          { cause: error },
        ),
      );
    }
  }

  #sendSubscribe(name: string, record: Subscription, recover = true): void {
    record.inFlight = true;
    // After a reconnect, on a channel with history: what was missed since the last one.
    record.asked = recover ? record.position : undefined;
    record.askedPresence = record.presence.size > 0;
    this.#request("subscribe", name, record.params, record.asked, record.askedPresence).then(
      () => {
        record.inFlight = false;
        record.confirmed = true;
        record.retries = 0;
        record.confirm();
      },
      (error: unknown) => {
        record.inFlight = false;
        // Lost with the connection: it is sent again once the connection is back.
        if (error instanceof SocketAPIClientError && error.code === ClientErrorCode.DISCONNECTED) {
          return;
        }
        // Told where it is awaited: `ready` if the app took it, else onError (a resubscribe
        // after a reconnect, whose `ready` settled long ago, always goes there).
        const awaited = record.readyTaken && !record.readySettled;
        const timedOut =
          error instanceof SocketAPIClientError && error.code === ClientErrorCode.TIMEOUT;
        if (timedOut && record.readySettled && this.#subscriptions.get(name) === record) {
          // A resubscribe the server was too busy to answer in time (a reconnect storm):
          // not dropped, for its listeners would go deaf without a word; asked again after
          // a backoff, from the same position.
          this.#emitError(error as SocketAPIClientError);
          this.#resubscribeLater(name, record);
          return;
        }
        if (this.#subscriptions.get(name) === record) this.#subscriptions.delete(name);
        // The server may still take a subscribe it answered too late: undone.
        if (timedOut && this.#status === "open") {
          this.#request("unsubscribe", name, undefined).catch(() => {});
        }
        record.refuse(error);
        if (!awaited) this.#emitError(error as SocketAPIClientError);
      },
    );
  }

  /** Sends a timed-out resubscribe again after a jittered backoff, while it is still wanted. */
  #resubscribeLater(name: string, record: Subscription): void {
    const reconnect = this.#options.reconnect;
    const delay = reconnectDelay(record.retries++, reconnect || undefined);
    setTimeout(() => {
      if (this.#subscriptions.get(name) !== record || record.confirmed || record.inFlight) return;
      if (this.#status === "open") this.#sendSubscribe(name, record);
    }, delay);
  }

  #failPending(which: (pending: Pending) => boolean, code: string, message: string): void {
    this.#requests.fail(
      which,
      (pending) => new SocketAPIClientError(code, message, { channel: pending.channel }),
    );
  }

  /** Nothing came back in time: the connection is dead even if the socket does not know. */
  #deadConnection(): void {
    const socket = this.#socket;
    if (!socket) return;
    try {
      socket.close(4000, "Heartbeat timeout");
    } catch {
      // Closing a dead socket may throw; it is dropped either way.
    }
    this.#dropped(socket);
  }

  #setStatus(status: ConnectionStatus): void {
    if (this.#status === status) return;
    this.#status = status;
    for (const listener of [...this.#statusListeners]) this.#callListener(listener, status);
  }

  #callListener<T, U>(listener: (value: T, extra: U) => void, value: T, extra?: U): void {
    try {
      if (extra === undefined) (listener as (value: T) => void)(value);
      else listener(value, extra);
    } catch (error) {
      this.#emitError(
        new SocketAPIClientError(
          ClientErrorCode.LISTENER_FAILED,
          `A listener threw: ${messageOf(error)}`,
          { cause: error },
        ),
      );
    }
  }

  #emitError(error: SocketAPIClientError): void {
    if (this.#errorListeners.size === 0) return;
    for (const listener of [...this.#errorListeners]) {
      try {
        listener(error);
      } catch {
        // An error listener's own failure has nowhere left to go.
      }
    }
  }
}

/**
 * Connects to a SocketAPI server, typed by its app: pass `typeof app` (a type-only import:
 * no server code reaches the client bundle).
 *
 * @example
 * ```ts
 * import { createClient } from "socketapi/client";
 * import type app from "./main.ts";
 *
 * const client = createClient<typeof app>("ws://127.0.0.1:8000/");
 * console.log(await client.action("add_numbers", { a: 5, b: 3 })); // 8
 * client.subscribe("chat", ({ message }) => console.log(message));
 * ```
 */
export function createClient<App = unknown>(
  url: string,
  options: ClientOptions = {},
): SocketAPIClient<App> {
  return new SocketAPIClient<App>(url, options);
}
