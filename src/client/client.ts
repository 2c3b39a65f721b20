import type { RequestId, WireIssue } from "../protocol/protocol.ts";
import { RESET_AFTER_MS, type ReconnectOptions, reconnectDelay } from "./backoff.ts";
import { ClientErrorCode, SocketAPIClientError } from "./client-error.ts";
import type {
  ActionsOf,
  ChannelFor,
  ChannelName,
  ChannelsOf,
  DataInfo,
  InputArgs,
  Listener,
  Member,
  Received,
  SubscribeArgs,
  SubscriptionHandlers,
  SubscriptionListener,
} from "./client-types.ts";
import {
  type HandshakeFailure,
  isRetryableStatus,
  statusOfErrorEvent,
  watchRefusal,
} from "./refusal.ts";

// Event handler types are left open so that every WebSocket class fits: the browser's,
// Bun's, Deno's, and `ws`'s, whose events are its own classes.
// biome-ignore lint/suspicious/noExplicitAny: see above.
type Handler = ((event: any) => void) | null;

/** The part of a WHATWG `WebSocket` the client uses; `ws`'s class fits too. */
export interface ClientSocket {
  readonly readyState: number;
  send(data: string): void;
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

/** Where the connection is. */
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

interface Pending {
  readonly id: RequestId | undefined;
  readonly type: "action" | "subscribe" | "unsubscribe";
  readonly channel: string;
  readonly text: string;
  sent: boolean;
  resolve(value: unknown): void;
  reject(error: SocketAPIClientError): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** A place in a channel's stream, as the server's frames gave it. */
interface Position {
  offset: number;
  epoch: string;
}

interface SubscriptionRecord {
  readonly params: Record<string, unknown> | undefined;
  readonly listeners: Set<Listener<unknown>>;
  /** What runs when missed broadcasts could not be recovered. */
  readonly resets: Set<(info: { readonly channel: string }) => void>;
  /** The handlers that asked for presence: members, joins, leaves. */
  readonly presence: Set<SubscriptionHandlers<unknown>>;
  /** On a channel with history: the last broadcast received (or the start), to recover from. */
  position: Position | undefined;
  /** While broadcasts missed are being sent again: the offset of the last of them. */
  recoveringUntil: number | undefined;
  /** The position the subscribe in flight asked to recover from. */
  asked: Position | undefined;
  /** Whether the last subscribe sent asked for presence. */
  askedPresence: boolean;
  /** The server confirmed it on the current connection. */
  confirmed: boolean;
  /** A subscribe frame is queued or waiting for its answer. */
  inFlight: boolean;
  /** Settles with the first confirmation, or the server's refusal. */
  readonly ready: Promise<void>;
  /** The app read `ready`: a refusal is its to handle, not `onError`'s. */
  readyTaken: boolean;
  /** `ready` settled already. */
  readySettled: boolean;
  confirm(): void;
  refuse(error: unknown): void;
}

function subscriptionRecord(params: Record<string, unknown> | undefined): SubscriptionRecord {
  let confirm = (): void => {};
  let refuse = (_error: unknown): void => {};
  const ready = new Promise<void>((resolve, reject) => {
    confirm = () => {
      record.readySettled = true;
      resolve();
    };
    refuse = (error) => {
      record.readySettled = true;
      reject(error);
    };
  });
  // Awaiting `ready` is optional: a refusal nobody awaits goes to `onError`, not unhandled.
  ready.catch(() => {});
  const record: SubscriptionRecord = {
    params,
    listeners: new Set(),
    resets: new Set(),
    presence: new Set(),
    position: undefined,
    recoveringUntil: undefined,
    asked: undefined,
    askedPresence: false,
    confirmed: false,
    inFlight: false,
    ready,
    readyTaken: false,
    readySettled: false,
    confirm,
    refuse,
  };
  return record;
}

/** An error's message, or the thrown value as text. */
function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The parts of a `subscribed` answer the client reads. */
interface SubscribedAnswer {
  offset?: unknown;
  epoch?: unknown;
  recovered?: unknown;
  members?: unknown;
  count?: unknown;
}

/** What a socket's handlers become once the client lets go of it: errors are swallowed. */
function ignore(): void {}

const ANSWER_TYPE = {
  action: "action",
  subscribe: "subscribed",
  unsubscribe: "unsubscribed",
} as const;

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
  #nextId = 1;
  /** Requests in the order they were made: answers without ids are matched in this order. */
  #pending: Pending[] = [];
  readonly #subscriptions = new Map<string, SubscriptionRecord>();
  #closedByUser = false;
  /** Set when the server refused the upgrade for good: the client no longer reconnects. */
  #refusal: SocketAPIClientError | undefined;
  /** Whether the current socket opened, and what its handshake's failure said if not. */
  #socketOpened = false;
  #handshakeFailure: HandshakeFailure | undefined;
  #attempt = 0;
  /** When the scheduled attempt starts, while reconnecting. */
  #nextAttempt: number | undefined;
  /** Starts the waits again from the first once a connection stayed open long enough. */
  #stableTimer: ReturnType<typeof setTimeout> | undefined;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #silenceTimer: ReturnType<typeof setTimeout> | undefined;

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
   * `DISCONNECTED`, `CLOSED`).
   *
   * @example
   * ```ts
   * const sum = await client.action("add_numbers", { a: 5, b: 3 }); // number
   * ```
   */
  action<TName extends keyof ActionsOf<App> & string>(
    name: TName,
    ...input: InputArgs<ActionsOf<App>[TName]["input"]>
  ): Promise<Received<ActionsOf<App>[TName]["output"]>> {
    return this.#request("action", name, input[0]) as Promise<
      Received<ActionsOf<App>[TName]["output"]>
    >;
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
      record = subscriptionRecord(params);
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
    this.#stopHeartbeat();
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
    let socket: ClientSocket;
    try {
      socket = new this.#WebSocket(this.url, this.#options.protocols);
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
  }

  #opened(): void {
    this.#socketOpened = true;
    // Not at once: a server that accepts and closes at once would be retried at full speed.
    const reconnect = this.#options.reconnect;
    this.#stableTimer = setTimeout(
      () => {
        this.#attempt = 0;
      },
      (reconnect || undefined)?.resetAfter ?? RESET_AFTER_MS,
    );
    this.#setStatus("open");
    this.#startHeartbeat();
    for (const pending of this.#pending) {
      if (!pending.sent) this.#transmit(pending);
    }
    for (const [name, record] of this.#subscriptions) {
      if (!record.confirmed && !record.inFlight) this.#sendSubscribe(name, record);
    }
  }

  #dropped(socket: ClientSocket): void {
    if (socket !== this.#socket) return;
    this.#detach(socket);
    this.#socket = undefined;
    clearTimeout(this.#stableTimer);
    this.#stopHeartbeat();
    // Requests already sent may or may not have been served: fail them, never resend.
    this.#failPending(
      (p) => p.sent,
      ClientErrorCode.DISCONNECTED,
      "The connection dropped before the answer.",
    );
    for (const record of this.#subscriptions.values()) record.confirmed = false;
    if (this.#closedByUser) return;
    if (!this.#socketOpened && this.#connectFailed()) return;
    this.#retry();
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
    for (const pending of this.#pending.splice(0)) {
      clearTimeout(pending.timer);
      pending.reject(
        new SocketAPIClientError(refusal.code, refusal.message, {
          status,
          channel: pending.channel,
        }),
      );
    }
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

  #received(data: unknown): void {
    this.#heard();
    if (typeof data !== "string") return;
    let frame: {
      type?: unknown;
      channel?: unknown;
      id?: RequestId;
      data?: unknown;
      offset?: unknown;
      epoch?: unknown;
      code?: string;
      message?: string;
      issues?: WireIssue[];
    };
    try {
      frame = JSON.parse(data);
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
    if (frame === null || typeof frame !== "object") {
      this.#emitError(
        new SocketAPIClientError(
          ClientErrorCode.INVALID_FRAME,
          `Not a SocketAPI frame: ${data.slice(0, 100)}`,
        ),
      );
      return;
    }
    if (frame.type === "data" && typeof frame.channel === "string") {
      const record = this.#subscriptions.get(frame.channel);
      if (record) this.#data(frame.channel, record, frame.data, frame.offset, frame.epoch);
      return;
    }
    if (frame.type === "pong") return;
    if ((frame.type === "join" || frame.type === "leave") && typeof frame.channel === "string") {
      this.#presenceEvent(frame.type, frame.channel, frame as unknown as Member);
      return;
    }
    const pending = this.#match(frame.type, frame.channel, frame.id);
    if (!pending) return;
    this.#settle(pending);
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
      if (record) this.#positioned(pending.channel, record, frame);
      pending.resolve(frame.data);
    }
  }

  /** A member joined or left: the subscription's presence handlers hear it. */
  #presenceEvent(type: "join" | "leave", channel: string, frame: Member): void {
    const record = this.#subscriptions.get(channel);
    if (!record) return;
    const member = type === "join" ? { user: frame.user, info: frame.info } : { user: frame.user };
    for (const handlers of [...record.presence]) {
      const handler = type === "join" ? handlers.join : handlers.leave;
      if (handler) this.#call(handler as (member: unknown) => void, member);
    }
  }

  /** A data frame: its position kept, then every listener called. */
  #data(
    channel: string,
    record: SubscriptionRecord,
    data: unknown,
    offset: unknown,
    epoch: unknown,
  ): void {
    let info: DataInfo = { channel, recovered: false };
    if (typeof offset === "number" && typeof epoch === "string") {
      const until = record.recoveringUntil;
      const recovered = until !== undefined && offset <= until;
      if (until !== undefined && offset >= until) record.recoveringUntil = undefined;
      record.position = { offset, epoch };
      info = { channel, offset, epoch, recovered };
    }
    for (const listener of [...record.listeners]) this.#call(listener, data, info);
  }

  /** The request an answer is for: by id, else the oldest that fits its type and channel. */
  #match(type: unknown, channel: unknown, id: RequestId | undefined): Pending | undefined {
    if (id !== undefined) {
      const byId = this.#pending.find((p) => p.id === id);
      if (byId) return byId;
    }
    return this.#pending.find(
      (p) =>
        p.sent &&
        (type === "error"
          ? channel === undefined || channel === p.channel
          : ANSWER_TYPE[p.type] === type && channel === p.channel),
    );
  }

  #request(
    type: Pending["type"],
    channel: string,
    data: unknown,
    since?: Position,
    presence?: boolean,
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
    const id = this.#options.ids === false ? undefined : this.#nextId++;
    const frame: Record<string, unknown> = { type, channel };
    if (data !== undefined) frame.data = data;
    if (since !== undefined) frame.since = since;
    if (presence) frame.presence = true;
    if (id !== undefined) frame.id = id;
    return new Promise((resolve, reject) => {
      const pending: Pending = {
        id,
        type,
        channel,
        text: JSON.stringify(frame),
        sent: false,
        resolve,
        reject,
        timer: undefined,
      };
      const timeout = this.#options.timeout ?? 10_000;
      pending.timer = setTimeout(() => {
        this.#settle(pending);
        reject(
          new SocketAPIClientError(ClientErrorCode.TIMEOUT, `No answer within ${timeout} ms.`, {
            channel,
          }),
        );
      }, timeout);
      this.#pending.push(pending);
      if (this.#status === "open") this.#transmit(pending);
    });
  }

  #transmit(pending: Pending): void {
    pending.sent = true;
    this.#send(pending.text);
  }

  /** Sends a frame; a socket that throws (closing under our feet) is left to its close event. */
  #send(text: string): void {
    try {
      this.#socket?.send(text);
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

  #sendSubscribe(name: string, record: SubscriptionRecord, recover = true): void {
    record.inFlight = true;
    // After a reconnect, on a channel with history: what was missed since the last one.
    record.asked = recover ? record.position : undefined;
    record.askedPresence = record.presence.size > 0;
    this.#request("subscribe", name, record.params, record.asked, record.askedPresence).then(
      () => {
        record.inFlight = false;
        record.confirmed = true;
        record.confirm();
      },
      (error: unknown) => {
        record.inFlight = false;
        // Lost with the connection: it is sent again once the connection is back.
        if (error instanceof SocketAPIClientError && error.code === ClientErrorCode.DISCONNECTED) {
          return;
        }
        if (this.#subscriptions.get(name) === record) this.#subscriptions.delete(name);
        // Told where it is awaited: `ready` if the app took it, else onError (a resubscribe
        // after a reconnect, whose `ready` settled long ago, always goes there).
        const awaited = record.readyTaken && !record.readySettled;
        record.refuse(error);
        if (!awaited) this.#emitError(error as SocketAPIClientError);
      },
    );
  }

  /**
   * A `subscribed` answer on a channel with history: recovering, the missed broadcasts
   * follow and move the position on; otherwise it starts where the stream is now, and a
   * subscription that had a position was reset.
   */
  #positioned(name: string, record: SubscriptionRecord, answer: SubscribedAnswer): void {
    if (Array.isArray(answer.members)) {
      const count = typeof answer.count === "number" ? answer.count : answer.members.length;
      for (const handlers of [...record.presence]) {
        if (handlers.members) this.#call(handlers.members, answer.members as Member[], count);
      }
    }
    const since = record.asked;
    record.asked = undefined;
    const { offset, epoch } = answer;
    const at =
      typeof offset === "number" && typeof epoch === "string" ? { offset, epoch } : undefined;
    if (since && answer.recovered === true && at) {
      record.recoveringUntil = at.offset > since.offset ? at.offset : undefined;
      return;
    }
    record.position = at;
    record.recoveringUntil = undefined;
    if (since) for (const reset of [...record.resets]) this.#call(reset, { channel: name });
  }

  #settle(pending: Pending): void {
    clearTimeout(pending.timer);
    this.#pending = this.#pending.filter((p) => p !== pending);
  }

  #failPending(which: (pending: Pending) => boolean, code: string, message: string): void {
    for (const pending of this.#pending.filter(which)) {
      this.#settle(pending);
      pending.reject(new SocketAPIClientError(code, message, { channel: pending.channel }));
    }
  }

  #startHeartbeat(): void {
    const heartbeat = this.#options.heartbeat;
    if (heartbeat === false) return;
    const interval = heartbeat?.interval ?? 25_000;
    this.#heartbeatTimer = setInterval(() => {
      this.#send('{"type":"ping"}');
      if (this.#silenceTimer === undefined) {
        this.#silenceTimer = setTimeout(() => this.#deadConnection(), heartbeat?.timeout ?? 10_000);
      }
    }, interval);
  }

  #heard(): void {
    clearTimeout(this.#silenceTimer);
    this.#silenceTimer = undefined;
  }

  #stopHeartbeat(): void {
    clearInterval(this.#heartbeatTimer);
    this.#heard();
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
    for (const listener of [...this.#statusListeners]) this.#call(listener, status);
  }

  #call<T, U>(listener: (value: T, extra: U) => void, value: T, extra?: U): void {
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
