import type { AppView, Connection, ConnectionState, UpgradeRequest } from "../context.ts";
import { bindChannelHandles } from "../declare/channel-handle.ts";
import type { Hub } from "../hub/hub.ts";
import type { Subscriber } from "../hub/subscriber.ts";
import { MAX_PRESENCE_USER_LENGTH } from "../presence/presence-registry.ts";
import type { Codec } from "../protocol/codec.ts";
import { errorFrame } from "../protocol/parse.ts";
import {
  CloseCode,
  ErrorCode,
  type ErrorFrame,
  ErrorMessage,
  type ServerFrame,
} from "../protocol/protocol.ts";
import { utf8Length } from "../protocol/utf8.ts";
import { type CodecWriter, writerOf } from "./codec-writer.ts";
import { Expiry } from "./expiry.ts";
import {
  type HeldChannels,
  heldCount,
  heldNames,
  holdsChannel,
  withChannel,
  withoutChannel,
} from "./held-channels.ts";
import { DecodedFrame, Intake, type QueuedFrame } from "./intake.ts";
import type { Limits } from "./limits.ts";
import { closeSlowConsumer, writeFrame } from "./outbox.ts";
import { RunningRequests } from "./running-requests.ts";
import type { ConnectionKeeper, SessionHost } from "./served-connection.ts";
import { type MessageData, OPEN, type SocketLike } from "./socket.ts";
import { restorePresence } from "./subscriptions.ts";

export type { ErrorInfo } from "../context.ts";

export type {
  ChannelMatch,
  ConnectionKeeper,
  SessionHost,
} from "./served-connection.ts";

const NO_SUBSCRIPTIONS: ReadonlySet<string> = new Set();

/**
 * One client's connection: who it is (id, state, the upgrade request), and the glue
 * between its socket and the jobs done for it: taking frames in within the limits
 * ({@link Intake}), serving them (`dispatch.ts`, which its host hands it), keeping its subscriptions
 * (`subscriptions.ts`) and writing to the socket (`outbox.ts`). Adapters feed it the
 * socket's events; it answers through the socket. Runtime-neutral: it only knows
 * {@link SocketLike}.
 *
 * Whatever a handler, guard, dependency, schema or hook throws or returns, the client gets
 * exactly one well-formed answer per frame (`INTERNAL_ERROR` at worst) and the app's error
 * hook hears of the fault; nothing a session does throws into the adapter that feeds it.
 */
export class Session<State extends object = ConnectionState>
  implements Connection<State>, Subscriber
{
  /** What the app's connections are served by: limits, declarations, error reporting. */
  readonly host: SessionHost;
  /** The subscriptions and broadcasts of the place that holds this connection. */
  readonly hub: Hub;
  readonly request: UpgradeRequest;
  /** Set by adapters that persist connections. */
  keeper: ConnectionKeeper | undefined;
  readonly #socket: SocketLike;
  /** The channels subscribed to: none, one name, or a set of two or more. */
  #held: HeldChannels;
  /**
   * Subscribes under way to channels not held yet: each holds a place under
   * `maxSubscriptions`, so that concurrent subscribes cannot overshoot it. @internal
   */
  subscribesUnderWay = 0;
  /** Made when first read: an idle connection never pays for it. */
  #id: string | undefined;
  #state: State | undefined;
  /**
   * Made with a frame; let go when nothing is left to serve, unless it keeps the rate
   * limit's bucket or counts refusals.
   */
  #intake: Intake | undefined;
  /** What it encodes its frames with, when it speaks a binary codec; else JSON text. */
  #codec: CodecWriter | undefined;
  /** Its requests that may be cancelled and its open streams; made when one starts. */
  #running: RunningRequests | undefined;
  #closed = false;
  /** The server started closing this connection: frames that still arrive are ignored. */
  #closing = false;
  #abort: AbortController | undefined;
  #onClosed: (() => void)[] | undefined;
  #boundChannels: Map<object, object> | undefined;
  /** When its credential expires; made when `onConnect` or a refresh sets one. */
  #expiry: Expiry | undefined;
  /** Whether the expiry keeps a timer (else the adapter's clock calls `expireIfDue`). */
  #expiryTimed = true;
  /** The `expiry` frame to send once the socket is open, for a client that speaks `socketapi`. */
  #greeting = false;
  /** A refresh is being served: one at a time. @internal */
  refreshing = false;
  /** Per channel with presence this connection is in, the member it counts for. */
  #presence: Map<string, string> | undefined;
  /** The channels with presence on which it hears joins and leaves. */
  #listening: Set<string> | undefined;

  constructor(
    host: SessionHost,
    hub: Hub,
    socket: SocketLike,
    request: UpgradeRequest,
    state: State | undefined,
    id?: string,
  ) {
    this.host = host;
    this.hub = hub;
    this.#id = id;
    this.#socket = socket;
    this.request = request;
    this.#state = state;
    if (id !== undefined) hub.named(this);
  }

  // --- The connection, as handlers see it ---

  /** Per-connection data: what `onConnect` returned (`{}` without it); handlers may change it. */
  get state(): State {
    this.#state ??= {} as State;
    return this.#state;
  }

  set state(state: State) {
    this.#state = state;
  }

  get id(): string {
    if (this.#id === undefined) {
      this.#id = crypto.randomUUID();
      this.hub.named(this);
    }
    return this.#id;
  }

  /** The id, if it was read or given already (none is made). @internal */
  get knownId(): string | undefined {
    return this.#id;
  }

  /** The channels subscribed to (a copy when there is one: one name is kept as a string). */
  get subscriptions(): ReadonlySet<string> {
    const held = this.#held;
    if (held === undefined) return NO_SUBSCRIPTIONS;
    return typeof held === "string" ? new Set([held]) : held;
  }

  /** Whether this connection is subscribed to `channel`. @internal */
  holds(channel: string): boolean {
    return holdsChannel(this.#held, channel);
  }

  /** How many channels it is subscribed to. @internal */
  get subscriptionCount(): number {
    return heldCount(this.#held);
  }

  /** Marks `channel` as subscribed to (the hub is told by the caller). @internal */
  hold(channel: string): void {
    if (holdsChannel(this.#held, channel)) return;
    this.#held = withChannel(this.#held, channel);
    this.#countSubscription(channel, 1);
  }

  /** Marks `channel` as no longer subscribed to; `false` when it was not. @internal */
  release(channel: string): boolean {
    if (!holdsChannel(this.#held, channel)) return false;
    this.#held = withoutChannel(this.#held, channel);
    this.#countSubscription(channel, -1);
    return true;
  }

  get isOpen(): boolean {
    return !this.#closed && this.#socket.readyState === OPEN;
  }

  /** Its requests that may be cancelled, and its open streams. @internal */
  get running(): RunningRequests {
    this.#running ??= new RunningRequests();
    return this.#running;
  }

  /** How many bytes the socket has not sent yet, where the runtime can tell. @internal */
  get bufferedAmount(): number | undefined {
    return this.#socket.bufferedAmount;
  }

  /** Aborted when the connection closes; created on first use. */
  get signal(): AbortSignal {
    this.#abort ??= new AbortController();
    if (this.#closed && !this.#abort.signal.aborted) this.#abort.abort();
    return this.#abort.signal;
  }

  /** The place that holds this connection, as handlers see it (`ctx.app`). */
  get app(): AppView<State> {
    return this.hub.view as AppView<State>;
  }

  send(frame: ServerFrame): void {
    this.answer(JSON.stringify(frame));
  }

  close(code: number = CloseCode.normal, reason = ""): void {
    this.#closing = true;
    try {
      this.#socket.close(code, reason);
    } catch (error) {
      this.host.reportError(error, { connection: this, phase: "send" });
    }
  }

  /**
   * The channel handles a handler of this connection sees: they broadcast on its behalf.
   * @internal
   */
  channelsFor<T extends object>(handles: T): T {
    this.#boundChannels ??= new Map();
    let bound = this.#boundChannels.get(handles);
    if (!bound) {
      bound = bindChannelHandles(handles, this);
      this.#boundChannels.set(handles, bound);
    }
    return bound as T;
  }

  // --- Its credential's expiry ---

  /**
   * When the connection's credential expires (ms since the epoch), as `onConnect` or the
   * last refresh said; `undefined`: never.
   */
  get expiresAt(): number | undefined {
    return this.#expiry?.at;
  }

  /**
   * Sets when the credential expires: then the connection is closed with 4001 `Token
   * expired`. `timed: false` where timers do not outlive the process (a Durable Object's
   * hibernation): the adapter then calls {@link expireIfDue} from its own clock (an alarm),
   * and hears of each change through its keeper's `expiryChanged`. `greet` sends the
   * client an `expiry` frame once the socket is open (a client that speaks `socketapi`).
   * @internal
   */
  startExpiry(at: number | undefined, options: { timed?: boolean; greet?: boolean } = {}): void {
    this.#expiryTimed = options.timed ?? true;
    if (at === undefined) return;
    this.#greeting = options.greet ?? false;
    this.setExpiry(at);
    if (this.#socket.readyState === OPEN) this.greet();
  }

  /** Moves (or, with `undefined`, removes) the credential's expiry. @internal */
  setExpiry(at: number | undefined): void {
    if (at === undefined && this.#expiry === undefined) return;
    this.#expiry ??= new Expiry(this, this.#expiryTimed);
    this.#expiry.set(at);
    this.keeper?.expiryChanged?.(this, at);
  }

  /** Closes the connection if its credential expired at or before `now`; says whether. */
  expireIfDue(now: number = Date.now()): boolean {
    return this.#expiry?.expireIfDue(now) ?? false;
  }

  /**
   * Sends the `expiry` frame it owes a client that speaks `socketapi`, once its socket is
   * open (adapters whose sockets open after the session call it from the `open` event).
   */
  greet(): void {
    if (!this.#greeting) return;
    this.#greeting = false;
    const at = this.#expiry?.at;
    if (at === undefined || this.#closed) return;
    this.answer(`{"type":"expiry","expiresIn":${Math.max(0, at - Date.now())}}`);
  }

  /** The user it belongs to, as the app's `userId` says. @internal */
  userOf(): string | undefined {
    return this.hub.userOf?.(this);
  }

  // --- What adapters feed it ---

  /** The socket this session answers through. */
  get socket(): SocketLike {
    return this.#socket;
  }

  /** Feeds the data of a WHATWG `message` event (text or binary). */
  receive(data: MessageData): void {
    if (typeof data === "string") this.receiveText(data);
    else if (data instanceof ArrayBuffer) this.receiveBinary(new Uint8Array(data));
    else if (ArrayBuffer.isView(data)) {
      this.receiveBinary(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    } else this.receiveBinary();
  }

  /**
   * Feeds a text frame. `byteLength` is its size in UTF-8 when the runtime already knows it
   * (Node's `ws` hands over a Buffer); otherwise it is counted when it matters.
   */
  receiveText(text: string, byteLength?: number): void {
    const limit = this.host.limits.maxMessageBytes;
    if ((byteLength ?? utf8Length(text, limit)) > limit) this.receiveTooLarge();
    else this.#take(text, text.length);
  }

  /** Feeds a text frame that the adapter measured above the app's limit, without decoding it. */
  receiveTooLarge(): void {
    const limit = this.host.limits.maxMessageBytes;
    this.host.telemetry.refused("size");
    this.#take(errorFrame(ErrorCode.MESSAGE_TOO_LARGE, ErrorMessage.tooLarge(limit), undefined), 0);
  }

  /**
   * Feeds a binary frame. On a connection that speaks a codec (`socketapi.msgpack`) it is
   * decoded and served like a text frame, held to `maxMessageBytes` as it is; on any
   * other it is refused, in its turn (as it is without its bytes).
   */
  receiveBinary(bytes?: Uint8Array): void {
    const codec = this.#codec?.codec;
    if (codec === undefined || bytes === undefined) {
      this.#take(errorFrame(ErrorCode.INVALID_MESSAGE, ErrorMessage.binaryFrame, undefined), 0);
      return;
    }
    if (bytes.byteLength > this.host.limits.maxMessageBytes) {
      this.receiveTooLarge();
      return;
    }
    let value: unknown;
    try {
      value = codec.decode(bytes);
    } catch {
      const message = ErrorMessage.invalidEncoding(codec.name);
      this.#take(errorFrame(ErrorCode.INVALID_MESSAGE, message, undefined), 0);
      return;
    }
    this.#take(new DecodedFrame(value, bytes.byteLength), bytes.byteLength);
  }

  /**
   * Speaks `codec` from now on: frames are sent encoded with it, and binary frames are
   * decoded with it (text frames are still read as JSON). @internal
   */
  speak(codec: Codec): void {
    this.#codec = writerOf(codec);
  }

  /** The codec it speaks, when not JSON. */
  get codec(): Codec | undefined {
    return this.#codec?.codec;
  }

  /** Tells the session its socket closed: subscriptions end, pending frames are dropped. */
  handleClose(code = 1005, reason = ""): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#expiry?.clear();
    this.#intake?.clear();
    this.#abort?.abort();
    this.#running?.cancelAll();
    this.#unsubscribeAll();
    this.host.sessionClosed(this, code, reason);
    for (const resolve of this.#onClosed?.splice(0) ?? []) resolve();
  }

  /** Resolves once the socket has closed and the session has cleaned up. */
  whenClosed(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#onClosed ??= [];
      this.#onClosed.push(resolve);
    });
  }

  /**
   * Stops taking new frames and resolves once the frames already taken are served: the
   * first step of a graceful shutdown.
   */
  drain(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#intake ??= new Intake(this);
    const drained = this.#intake.drain();
    const streams = this.#running?.streamsEnded();
    return streams ? Promise.all([drained, streams]).then(() => {}) : drained;
  }

  /**
   * Marks channels as subscribed without running their handlers, and puts the connection
   * back in its hub's index: for adapters that restore a connection (a Durable Object
   * after a wake), whose relay still has its subscriptions.
   */
  restoreSubscriptions(names: Iterable<string>, listening: Iterable<string> = []): void {
    for (const name of names) {
      this.hold(name);
      this.hub.index.add(name, this);
    }
    restorePresence(this, heldNames(this.#held), listening);
  }

  /** @internal */
  refused(by: "rate" | "queue"): void {
    this.host.telemetry.refused(by);
  }

  /** Whether it keeps an intake while no frame is being served (a rate limit's bucket). @internal */
  get keepsIntake(): boolean {
    return this.#intake !== undefined;
  }

  /** Queue entries waiting their turn (a run of refusals is one), for tests and metrics. */
  get queuedEntries(): number {
    return this.#intake?.queuedEntries ?? 0;
  }

  // --- Its subscriber role in the hub ---

  /** Sends an already serialized frame for the hub; `false` when it cannot be sent. */
  deliver(frame: string): boolean {
    // Counted by the hub, once per broadcast, not here once per subscriber.
    return this.#write(frame);
  }

  dropAfterFailedDelivery(): void {
    this.#unsubscribeAll();
    if (!this.#closed && this.#socket.readyState === OPEN) {
      this.close(CloseCode.internalError, "Send failed");
    }
  }

  // --- For the jobs done for it (intake, dispatch, subscriptions) ---

  /** Whether the socket has closed. @internal */
  get closed(): boolean {
    return this.#closed;
  }

  /** The app's limits, resolved once. @internal */
  get limits(): Limits {
    return this.host.limits;
  }

  /**
   * Writes a text frame to the client; `false` when it could not be sent. A client whose
   * send buffer passed the limit is cut off. @internal
   */
  answer(text: string): boolean {
    this.host.telemetry.frameSent(text);
    return this.#write(text);
  }

  /** @internal */
  cutOffSlow(): void {
    if (this.#closing) return;
    this.host.telemetry.refused("slow_consumer");
    this.#closing = true;
    this.#unsubscribeAll();
    closeSlowConsumer(this.#socket);
  }

  #write(text: string): boolean {
    try {
      const frame = this.#codec === undefined ? text : this.#codec.bytesOf(text);
      const written = writeFrame(this.#socket, frame, this.host.limits.maxBufferedBytes);
      if (written === "slow") this.cutOffSlow();
      return written !== "dropped";
    } catch (error) {
      this.host.reportError(error, { connection: this, phase: "send" });
      return false;
    }
  }

  /** @internal */
  serveFrame(frame: QueuedFrame): Promise<void> | undefined {
    return this.host.serveFrame(this, frame);
  }

  /**
   * Counts this connection in the presence of `channel`, as its user (the app's `userId`)
   * or as itself, showing `info` (JSON). @internal
   */
  enterPresence(channel: string, info: string, silently = false): void | Promise<void> {
    let member: string;
    try {
      member = this.presenceMember(channel);
    } catch (error) {
      // Checked before the subscribe added the connection; a restored one is not counted.
      this.host.reportError(error, { connection: this, channel, phase: "subscribe" });
      return;
    }
    this.#presence ??= new Map();
    this.#presence.set(channel, member);
    if (silently) this.hub.presence.registry.join(channel, member, info);
    else return this.hub.presence.join(channel, member, info, this);
  }

  /**
   * The member this connection counts for in the presence of `channel`: its user (the
   * app's `userId`), or itself. Throws for a user id longer than
   * {@link MAX_PRESENCE_USER_LENGTH} characters, which would be listed to every member. @internal
   */
  presenceMember(channel: string): string {
    let user: string | undefined;
    try {
      user = this.userOf();
    } catch (error) {
      this.host.reportError(error, { connection: this, channel, phase: "subscribe" });
    }
    if (user !== undefined && user.length > MAX_PRESENCE_USER_LENGTH) {
      throw new Error(
        `Channel '${channel}': the user id (userId) is over ${MAX_PRESENCE_USER_LENGTH} characters: ` +
          `${user.length}. Presence lists it to every member.`,
      );
    }
    return user ?? this.id;
  }

  /** Counts this connection out of the presence of `channel`, if it was in. @internal */
  leavePresence(channel: string): void {
    // Only a listener leaves the listeners: the index counts those of a runtime's topics.
    if (this.#listening?.delete(channel)) this.hub.presence.listeners.remove(channel, this);
    const member = this.#presence?.get(channel);
    if (member === undefined) return;
    this.#presence?.delete(channel);
    this.hub.presence.leave(channel, member);
  }

  /** From now on, this connection hears joins and leaves on `channel`. @internal */
  listenToPresence(channel: string): void {
    this.#listening ??= new Set();
    if (this.#listening.has(channel)) return;
    this.#listening.add(channel);
    this.hub.presence.listeners.add(channel, this);
  }

  /** @internal */
  closeForAbuse(): void {
    this.#unsubscribeAll();
    this.close(CloseCode.policyViolation, "Rate limit abuse");
  }

  /** @internal */
  settled(): void {
    if (this.#intake?.keepsNothing) this.#intake = undefined;
    if (!this.keeper || this.#closed) return;
    try {
      this.keeper.idle(this);
    } catch (error) {
      this.host.reportError(error, { connection: this, phase: "persist" });
    }
  }

  #take(frame: string | DecodedFrame | ErrorFrame, size: number): void {
    if (this.#closed || this.#closing) return;
    this.host.telemetry.frameReceived();
    this.#intake ??= new Intake(this);
    this.#intake.take(frame, size);
  }

  /** Tells the app's metrics, when it records any, of a subscription added or removed. */
  #countSubscription(channel: string, change: 1 | -1): void {
    const { telemetry } = this.host;
    if (telemetry.recording) telemetry.subscriptionCounter(this.host)?.(channel, change);
  }

  #unsubscribeAll(): void {
    const held = this.#held;
    if (held === undefined) return;
    for (const name of heldNames(held)) {
      this.#countSubscription(name, -1);
      try {
        this.hub.remove(name, this);
        this.leavePresence(name);
        this.keeper?.unsubscribed(this, name);
      } catch (error) {
        this.host.reportError(error, { connection: this, channel: name, phase: "subscribe" });
      }
    }
    this.#held = undefined;
  }
}
