import { bindChannelHandles } from "./channel-handle.ts";
import type { ChannelTemplate } from "./channel-template.ts";
import type { Connection, ConnectionState, UpgradeRequest } from "./context.ts";
import type { ActionDeclaration, ChannelDeclaration } from "./declarations.ts";
import { resolveDependencies } from "./dependency.ts";
import { ForbiddenError, SocketAPIError } from "./errors.ts";
import { HandlerContext, SubscribeHandlerContext } from "./handler-context.ts";
import type { Hub, Subscriber } from "./hub.ts";
import { errorFrame, parseFrame } from "./parse-frame.ts";
import {
  type ActionFrame,
  CloseCode,
  ErrorCode,
  type ErrorFrame,
  ErrorMessage,
  PING_FRAME,
  PONG_FRAME,
  type RequestId,
  type ServerFrame,
  type SubscribeFrame,
  type UnsubscribeFrame,
  type WireIssue,
} from "./protocol.ts";
import { DEFAULT_RATE_LIMIT, type ResolvedRateLimit, TokenBucket } from "./rate-limiter.ts";
import { serializeData } from "./serialize.ts";
import { type MessageData, OPEN, type SocketLike, utf8Length } from "./socket.ts";
import { parseOutput, type Validation, validate } from "./validate.ts";

/** A channel found for a concrete name: its declaration and the parameters in the name. */
export interface ChannelMatch {
  readonly declaration: ChannelDeclaration;
  readonly template: ChannelTemplate;
  readonly nameParams: Record<string, string>;
}

/** Where an unexpected error happened, for the app's error hook. */
export interface ErrorInfo {
  /** The connection it happened on, if any. */
  readonly connection?: Connection<object>;
  /** The action or channel being served. */
  readonly channel?: string;
  /** What was being done: `action`, `subscribe`, `send`, `connect`, `disconnect`, `broadcast`. */
  readonly phase: string;
}

/** What a session needs from its app. */
/** The limits each connection is held to (the app's options, defaults applied). */
export interface SessionLimits {
  readonly rateLimit: ResolvedRateLimit | false;
  readonly maxQueuedMessages: number;
  readonly maxSubscriptions: number;
}

export interface SessionHost {
  readonly hub: Hub;
  readonly maxMessageBytes: number;
  readonly maxBufferedBytes: number;
  readonly concurrency: number;
  readonly limits: SessionLimits;
  findAction(name: string): ActionDeclaration | undefined;
  findChannel(concreteName: string): ChannelMatch | undefined;
  reportError(error: unknown, info: ErrorInfo): void;
  sessionClosed(session: Session<object>, code: number, reason: string): void;
}

type QueuedFrame = string | ErrorFrame;

const NO_SUBSCRIPTIONS: ReadonlySet<string> = new Set();

/**
 * One client's connection: it reads frames in arrival order, serves them, and keeps the
 * client's subscriptions. Adapters feed it the socket's events; it answers through the
 * socket. Runtime-neutral: it only knows {@link SocketLike}.
 */
export class Session<State extends object = ConnectionState>
  implements Connection<State>, Subscriber
{
  /**
   * Called whenever the session has served every frame it had: adapters that persist a
   * connection (a Durable Object's socket attachment) save its state then.
   */
  onIdle: (() => void) | undefined;
  readonly request: UpgradeRequest;
  readonly #host: SessionHost;
  readonly #socket: SocketLike;
  /** The channels subscribed to; created with the first subscription (idle connections have none). */
  #subscriptions: Set<string> | undefined;
  /** Made when first read: an idle connection never pays for it. */
  #id: string | undefined;
  /** Frames waiting their turn; made when a frame first has to wait. */
  #queue: QueuedFrame[] | undefined;
  #state: State | undefined;
  #inFlight = 0;
  #pumping = false;
  #closed = false;
  #abort: AbortController | undefined;
  #onClosed: (() => void)[] | undefined;
  #boundChannels: Map<object, object> | undefined;
  #bucket: TokenBucket | undefined;
  #draining = false;
  /** The server started closing this connection: frames that still arrive are ignored. */
  #closing = false;
  #onDrained: (() => void)[] | undefined;

  constructor(
    host: SessionHost,
    socket: SocketLike,
    request: UpgradeRequest,
    state: State | undefined,
    id?: string,
  ) {
    this.#id = id;
    this.#host = host;
    this.#socket = socket;
    this.request = request;
    this.#state = state;
  }

  /** Per-connection data: what `onConnect` returned (`{}` without it); handlers may change it. */
  get state(): State {
    this.#state ??= {} as State;
    return this.#state;
  }

  set state(state: State) {
    this.#state = state;
  }

  get id(): string {
    this.#id ??= crypto.randomUUID();
    return this.#id;
  }

  get subscriptions(): ReadonlySet<string> {
    return this.#subscriptions ?? NO_SUBSCRIPTIONS;
  }

  get isOpen(): boolean {
    return !this.#closed && this.#socket.readyState === OPEN;
  }

  /** Aborted when the connection closes; created on first use. */
  get signal(): AbortSignal {
    this.#abort ??= new AbortController();
    if (this.#closed && !this.#abort.signal.aborted) this.#abort.abort();
    return this.#abort.signal;
  }

  /** The socket this session answers through, for adapters. */
  get socket(): SocketLike {
    return this.#socket;
  }

  send(frame: ServerFrame): void {
    this.#sendText(JSON.stringify(frame));
  }

  close(code = 1000, reason = ""): void {
    this.#closing = true;
    this.#socket.close(code, reason);
  }

  /** Feeds the data of a WHATWG `message` event (text or binary). */
  receive(data: MessageData): void {
    if (typeof data === "string") this.receiveText(data);
    else this.receiveBinary();
  }

  /**
   * Feeds a text frame. `byteLength` is its size in UTF-8 when the runtime already knows it
   * (Node's `ws` hands over a Buffer); otherwise it is counted when it matters.
   */
  receiveText(text: string, byteLength?: number): void {
    const limit = this.#host.maxMessageBytes;
    if ((byteLength ?? utf8Length(text, limit)) > limit) this.receiveTooLarge();
    else this.#enqueue(text);
  }

  /** Feeds a text frame that the adapter measured above the app's limit, without decoding it. */
  receiveTooLarge(): void {
    const limit = this.#host.maxMessageBytes;
    this.#enqueue(errorFrame(ErrorCode.MESSAGE_TOO_LARGE, ErrorMessage.tooLarge(limit), undefined));
  }

  /** Feeds a binary frame: it is refused, in its turn. */
  receiveBinary(): void {
    this.#enqueue(errorFrame(ErrorCode.INVALID_MESSAGE, ErrorMessage.binaryFrame, undefined));
  }

  /** Tells the session its socket closed: subscriptions end, pending frames are dropped. */
  handleClose(code = 1005, reason = ""): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = undefined;
    this.#abort?.abort();
    this.#unsubscribeAll();
    this.#host.sessionClosed(this, code, reason);
    for (const resolve of this.#onClosed?.splice(0) ?? []) resolve();
    for (const resolve of this.#onDrained?.splice(0) ?? []) resolve();
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
   * Marks channels as subscribed without running their handlers: for adapters that restore
   * a connection whose hub already holds its subscriptions (a Durable Object after a wake).
   */
  restoreSubscriptions(names: Iterable<string>): void {
    this.#subscriptions ??= new Set();
    for (const name of names) this.#subscriptions.add(name);
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

  /** Sends an already serialized frame for the hub; `false` when it cannot be sent. */
  deliver(frame: string): boolean {
    return this.#sendText(frame);
  }

  dropAfterFailedDelivery(): void {
    this.#unsubscribeAll();
    if (!this.#closed && this.#socket.readyState === OPEN) {
      this.#socket.close(1011, "Send failed");
    }
  }

  #enqueue(frame: QueuedFrame): void {
    if (this.#closed || this.#draining || this.#closing) return;
    if (!this.#withinLimits()) {
      this.#pump();
      return;
    }
    // The common case: nothing waiting, nothing running. Serve at once, without a queue.
    if (!this.#pumping && !this.#queue?.length && this.#inFlight < this.#host.concurrency) {
      this.#pumping = true;
      this.#run(frame);
      this.#pumping = false;
      this.#settled();
      return;
    }
    this.#queue ??= [];
    this.#queue.push(frame);
    this.#pump();
  }

  /**
   * Whether a new frame may be served: within the rate limit and the queue's length. A
   * frame over either is answered RATE_LIMITED in its turn; too many refused in a row
   * close the connection with 1008.
   */
  #withinLimits(): boolean {
    const { rateLimit, maxQueuedMessages } = this.#host.limits;
    const queueFull = (this.#queue?.length ?? 0) >= maxQueuedMessages;
    if (rateLimit !== false) this.#bucket ??= new TokenBucket(rateLimit);
    const overRate = this.#bucket !== undefined && !this.#bucket.take();
    if (!queueFull && !overRate) return true;
    const maxViolations =
      rateLimit === false ? DEFAULT_RATE_LIMIT.maxViolations : rateLimit.maxViolations;
    this.#bucket ??= new TokenBucket(DEFAULT_RATE_LIMIT);
    if (this.#bucket.refuse(maxViolations) > maxViolations) {
      this.#unsubscribeAll();
      this.close(CloseCode.policyViolation, "Rate limit abuse");
      return false;
    }
    const message = queueFull
      ? ErrorMessage.queueFull(maxQueuedMessages)
      : ErrorMessage.rateLimited((rateLimit as ResolvedRateLimit).messagesPerSecond);
    this.#queue ??= [];
    this.#queue.push(errorFrame(ErrorCode.RATE_LIMITED, message, undefined));
    return false;
  }

  /**
   * A slow consumer: it leaves every channel at once and is closed with 1013. A client that
   * does not read will not read the close frame either, so its socket is dropped a second
   * later, freeing what it buffered.
   */
  #cutOff(): void {
    if (this.#closing) return;
    this.#unsubscribeAll();
    this.close(CloseCode.tryAgainLater, "Slow consumer");
    if (this.#socket.terminate) {
      const socket = this.#socket;
      const timer = setTimeout(() => socket.terminate?.(), 1000);
      (timer as { unref?: () => void }).unref?.();
    }
  }

  /**
   * Stops taking new frames and resolves once the frames already taken are served: the
   * first step of a graceful shutdown.
   */
  drain(): Promise<void> {
    this.#draining = true;
    if (this.#closed || (this.#inFlight === 0 && !this.#queue?.length)) return Promise.resolve();
    return new Promise((resolve) => {
      this.#onDrained ??= [];
      this.#onDrained.push(resolve);
    });
  }

  /** Serves queued frames in order, up to the app's concurrency. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#queue?.length && this.#inFlight < this.#host.concurrency) {
        this.#run(this.#queue.shift() as QueuedFrame);
      }
    } finally {
      this.#pumping = false;
    }
    this.#settled();
  }

  /** Serves one frame; one that has to wait holds a place until it is done. */
  #run(frame: QueuedFrame): void {
    const pending = this.#serve(frame);
    if (!pending) return;
    this.#inFlight++;
    void pending.then(() => {
      this.#inFlight--;
      this.#pump();
    });
  }

  /** When nothing is left to serve: the adapter's idle hook, and a shutdown waiting to drain. */
  #settled(): void {
    if (this.#inFlight !== 0 || this.#queue?.length) return;
    if (this.onIdle && !this.#closed) this.onIdle();
    if (this.#onDrained) for (const resolve of this.#onDrained.splice(0)) resolve();
  }

  /** Serves one frame; returns a promise only when it has to wait (never rejects). */
  #serve(frame: QueuedFrame): Promise<void> | undefined {
    if (typeof frame !== "string") {
      this.send(frame);
      return undefined;
    }
    if (frame === PING_FRAME) {
      this.#sendText(PONG_FRAME);
      return undefined;
    }
    const parsed = parseFrame(frame);
    switch (parsed.type) {
      case "error":
        this.send(parsed);
        return undefined;
      case "ping":
        this.#sendText(PONG_FRAME);
        return undefined;
      case "action":
        return this.#action(parsed);
      case "subscribe":
        return this.#subscribe(parsed);
      case "unsubscribe":
        this.#unsubscribe(parsed);
        return undefined;
    }
  }

  /**
   * Serves an action. Written to stay synchronous as long as nothing is asynchronous (a
   * sync schema, a handler that returns a value): no promise, no microtask, the answer
   * written in the same turn. It returns a promise only when it has to wait.
   */
  #action(frame: ActionFrame): Promise<void> | undefined {
    const { channel: name, id } = frame;
    const action = this.#host.findAction(name);
    if (!action) {
      this.send(errorFrame(ErrorCode.NOT_FOUND, ErrorMessage.actionNotFound(name), id, name));
      return undefined;
    }
    if (!action.input) return this.#runAction(action, name, id, undefined);
    let checked: Validation | Promise<Validation>;
    try {
      checked = validate(action.input, frame.data === undefined ? {} : frame.data);
    } catch (error) {
      this.#fail(error, "action", name, id);
      return undefined;
    }
    if (checked instanceof Promise) {
      return checked.then(
        (result) => this.#validatedAction(action, name, id, result),
        (error: unknown) => this.#fail(error, "action", name, id),
      );
    }
    return this.#validatedAction(action, name, id, checked);
  }

  #validatedAction(
    action: ActionDeclaration,
    name: string,
    id: RequestId | undefined,
    checked: Validation,
  ): Promise<void> | undefined {
    if (!checked.ok) {
      this.#sendInvalidParams(ErrorMessage.invalidActionParams(name), name, id, checked.issues);
      return undefined;
    }
    return this.#runAction(action, name, id, checked.value);
  }

  #runAction(
    action: ActionDeclaration,
    name: string,
    id: RequestId | undefined,
    input: unknown,
  ): Promise<void> | undefined {
    const ctx = new HandlerContext(this, id, action.channels);
    if (action.dependencies || action.guard || action.output) {
      return this.#runActionFully(action, name, id, input, ctx);
    }
    let result: unknown;
    try {
      result = action.handler(input, ctx);
    } catch (error) {
      this.#fail(error, "action", name, id);
      return undefined;
    }
    if (isThenable(result)) {
      return Promise.resolve(result).then(
        (value) => this.#completed(name, value, id),
        (error: unknown) => this.#fail(error, "action", name, id),
      );
    }
    this.#completed(name, result, id);
    return undefined;
  }

  /** The general path: dependencies, guard, handler and output schema, any of them async. */
  async #runActionFully(
    action: ActionDeclaration,
    name: string,
    id: RequestId | undefined,
    input: unknown,
    ctx: HandlerContext,
  ): Promise<void> {
    try {
      let value = input;
      if (action.dependencies) value = await resolveDependencies(action.dependencies, value, ctx);
      if (action.guard && (await action.guard(value, ctx)) === false) throw new ForbiddenError();
      let result = await action.handler(value, ctx);
      if (action.output) result = await parseOutput(action.output, result);
      this.#completed(name, result, id);
    } catch (error) {
      this.#fail(error, "action", name, id);
    }
  }

  /** Sends an action's answer; a result that cannot be serialized is an internal error. */
  #completed(name: string, result: unknown, id: RequestId | undefined): void {
    let text: string;
    try {
      text = completedFrame(name, result, id);
    } catch (error) {
      this.#fail(error, "action", name, id);
      return;
    }
    this.#sendText(text);
  }

  async #subscribe(frame: SubscribeFrame): Promise<void> {
    const { channel: name, id } = frame;
    const match = this.#host.findChannel(name);
    if (!match) {
      this.send(errorFrame(ErrorCode.NOT_FOUND, ErrorMessage.channelNotFound(name), id, name));
      return;
    }
    const { declaration } = match;
    const { maxSubscriptions } = this.#host.limits;
    const subscriptions = this.subscriptions;
    if (!subscriptions.has(name) && subscriptions.size >= maxSubscriptions) {
      this.send(
        errorFrame(
          ErrorCode.TOO_MANY_SUBSCRIPTIONS,
          ErrorMessage.tooManySubscriptions(maxSubscriptions),
          id,
          name,
        ),
      );
      return;
    }
    try {
      let params: unknown;
      let given: ReturnType<typeof subscribeParams> | undefined;
      if (declaration.params) {
        given = subscribeParams(frame.data, declaration.subscribeKeys, match.nameParams);
        const checked = given.ok ? await validate(declaration.params, given.value) : given;
        if (!checked.ok) {
          this.#sendInvalidParams(
            ErrorMessage.invalidChannelParams(name),
            name,
            id,
            checked.issues,
          );
          return;
        }
        params = checked.value;
      }
      const ctx = new SubscribeHandlerContext(this, id, declaration.channels, name);
      if (declaration.dependencies) {
        params = await resolveDependencies(declaration.dependencies, params, ctx);
      }
      if (declaration.guard && (await declaration.guard(params, ctx)) === false) {
        throw new ForbiddenError();
      }
      let data = await declaration.handler(params, ctx);
      if (declaration.data) data = await parseOutput(declaration.data, data);
      // The client may have left while the handler ran: then there is nobody to add.
      if (this.#closed) return;
      if (!this.subscriptions.has(name)) {
        const clientParams = given?.ok
          ? withoutNameParams(given.value, match.nameParams)
          : undefined;
        await this.#host.hub.add(name, this, clientParams);
        if (this.#closed) {
          this.#host.hub.remove(name, this);
          return;
        }
        this.#subscriptions ??= new Set();
        this.#subscriptions.add(name);
      }
      this.#sendText(replyFrame("subscribed", name, id));
      if (declaration.initialData) this.#sendText(serializeData(name, data));
    } catch (error) {
      this.#fail(error, "subscribe", name, id);
    }
  }

  #unsubscribe(frame: UnsubscribeFrame): void {
    const { channel: name, id } = frame;
    if (this.#subscriptions?.delete(name)) this.#host.hub.remove(name, this);
    this.#sendText(replyFrame("unsubscribed", name, id));
  }

  #unsubscribeAll(): void {
    if (!this.#subscriptions) return;
    for (const name of this.#subscriptions) this.#host.hub.remove(name, this);
    this.#subscriptions.clear();
  }

  #sendInvalidParams(
    message: string,
    channel: string,
    id: RequestId | undefined,
    issues: WireIssue[],
  ): void {
    const frame = errorFrame(ErrorCode.INVALID_PARAMS, message, id, channel);
    frame.issues = issues;
    this.send(frame);
  }

  /** Answers a failed handler: the public error's code and message, or INTERNAL_ERROR. */
  #fail(error: unknown, phase: string, channel: string, id: RequestId | undefined): void {
    if (error instanceof SocketAPIError) {
      const frame = errorFrame(error.code, error.message, id, channel);
      if (error.issues) frame.issues = error.issues;
      this.send(frame);
      return;
    }
    // A handler stopped by the connection's own abort signal is not a fault to report.
    if (!(this.#closed && this.#abort?.signal.aborted && isAbortError(error))) {
      this.#host.reportError(error, { connection: this, channel, phase });
    }
    this.send(errorFrame(ErrorCode.INTERNAL_ERROR, ErrorMessage.internal, id, channel));
  }

  #sendText(text: string): boolean {
    if (this.#socket.readyState !== OPEN) return false;
    try {
      const sent = this.#socket.send(text);
      if (sent === 0 || sent === false) return false;
      // A client that stops reading makes its send buffer grow; past the limit it is
      // cut off, so that one slow reader never holds unbounded memory.
      const buffered = this.#socket.bufferedAmount;
      if (buffered !== undefined && buffered > this.#host.maxBufferedBytes) this.#cutOff();
      return true;
    } catch (error) {
      this.#host.reportError(error, { connection: this, phase: "send" });
      return false;
    }
  }
}

function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === "AbortError";
}

/** `{"type":"action","channel":NAME,"status":"completed"` per action name, made once. */
const completedPrefixes = new Map<string, string>();

function serializeId(id: RequestId): string {
  return typeof id === "number" ? String(id) : JSON.stringify(id);
}

function completedFrame(name: string, result: unknown, id: RequestId | undefined): string {
  let prefix = completedPrefixes.get(name);
  if (prefix === undefined) {
    prefix = `{"type":"action","channel":${JSON.stringify(name)},"status":"completed"`;
    completedPrefixes.set(name, prefix);
  }
  const data = result === undefined ? undefined : JSON.stringify(result);
  return `${prefix}${data === undefined ? "" : `,"data":${data}`}${
    id === undefined ? "" : `,"id":${serializeId(id)}`
  }}`;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

function replyFrame(
  type: "subscribed" | "unsubscribed",
  name: string,
  id: RequestId | undefined,
): string {
  return `{"type":"${type}","channel":${JSON.stringify(name)}${
    id === undefined ? "" : `,"id":${JSON.stringify(id)}`
  }}`;
}

/** The parameters the client itself sent, without those taken from the channel's name. */
function withoutNameParams(
  value: Record<string, unknown>,
  nameParams: Record<string, string>,
): Record<string, unknown> | undefined {
  let kept: Record<string, unknown> | undefined;
  for (const key of Object.keys(value)) {
    if (Object.hasOwn(nameParams, key)) continue;
    kept ??= {};
    kept[key] = value[key];
  }
  return kept;
}

/**
 * The parameters a subscribing client may set: only the marked keys of `data`, then the
 * parameters in the channel's name, which win.
 */
function subscribeParams(
  data: unknown,
  keys: readonly string[],
  nameParams: Record<string, string>,
): { ok: true; value: Record<string, unknown> } | { ok: false; issues: WireIssue[] } {
  if (data !== undefined && (data === null || typeof data !== "object" || Array.isArray(data))) {
    return {
      ok: false,
      issues: [{ message: "Subscribe parameters must be an object.", path: [] }],
    };
  }
  const value: Record<string, unknown> = {};
  const given = data as Record<string, unknown> | undefined;
  if (given) for (const key of keys) if (Object.hasOwn(given, key)) value[key] = given[key];
  return { ok: true, value: Object.assign(value, nameParams) };
}
