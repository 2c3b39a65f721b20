import type {
  AppView,
  Connection,
  ConnectionState,
  ErrorInfo,
  UpgradeRequest,
} from "../context.ts";
import { bindChannelHandles } from "../declare/channel-handle.ts";
import type { ChannelTemplate } from "../declare/channel-template.ts";
import type { ActionDeclaration, ChannelDeclaration } from "../declare/declarations.ts";
import { InvalidInput } from "../declare/pipeline.ts";
import { HandlerTimeoutError } from "../errors.ts";
import type { Hub, Subscriber } from "../hub/hub.ts";
import {
  completedFrame,
  dataFrame,
  errorText,
  internalErrorText,
  publicErrorText,
  replyFrame,
} from "../protocol/encode.ts";
import { errorFrame, parseFrame } from "../protocol/parse.ts";
import {
  type ActionFrame,
  CloseCode,
  ErrorCode,
  type ErrorFrame,
  ErrorMessage,
  PING_FRAME,
  PONG_FRAME,
  type ServerFrame,
  type SubscribeFrame,
  type UnsubscribeFrame,
  type WireIssue,
} from "../protocol/protocol.ts";
import { isThenable } from "../thenable.ts";
import { type FrameContext, HandlerContext, SubscribeHandlerContext } from "./handler-context.ts";
import type { Limits } from "./limits.ts";
import { TokenBucket, Violations } from "./rate-limiter.ts";
import { type MessageData, OPEN, type SocketLike, utf8Length } from "./socket.ts";

export type { ErrorInfo } from "../context.ts";

/** A channel found for a concrete name: its declaration and the parameters in the name. */
export interface ChannelMatch {
  readonly declaration: ChannelDeclaration;
  readonly template: ChannelTemplate;
  readonly nameParams: Record<string, string>;
}

/** What a session needs from its app. */
export interface SessionHost extends AppView<object> {
  readonly hub: Hub;
  readonly limits: Limits;
  findAction(name: string): ActionDeclaration | undefined;
  findChannel(concreteName: string): ChannelMatch | undefined;
  reportError(error: unknown, info: ErrorInfo): void;
  sessionClosed(session: Session<object>, code: number, reason: string): void;
}

/**
 * A run of refused frames waiting their turn to be answered: one entry however many, so
 * that refusals never grow the queue past its bound.
 */
class Refusals {
  readonly message: string;
  readonly text: string;
  count = 1;

  constructor(message: string) {
    this.message = message;
    this.text = errorText(ErrorCode.RATE_LIMITED, message, undefined);
  }
}

/** A frame waiting its turn: its text, an error frame to send (binary, too large), or refusals. */
type QueuedFrame = string | ErrorFrame | Refusals;

const NO_SUBSCRIPTIONS: ReadonlySet<string> = new Set();

/**
 * One client's connection: it reads frames in arrival order, serves them, and keeps the
 * client's subscriptions. Adapters feed it the socket's events; it answers through the
 * socket. Runtime-neutral: it only knows {@link SocketLike}.
 *
 * Whatever a handler, guard, dependency, schema or hook throws or returns, the client gets
 * exactly one well-formed answer per frame (`INTERNAL_ERROR` at worst) and the app's error
 * hook hears of the fault; nothing a session does throws into the adapter that feeds it.
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
  /**
   * Subscribes under way to channels not yet held: each holds a place under
   * `maxSubscriptions`. A number, not a set: an idle connection's first subscription
   * should cost no more than the subscription itself.
   */
  #subscribing = 0;
  /** Made when first read: an idle connection never pays for it. */
  #id: string | undefined;
  /** Frames waiting their turn; made when a frame first has to wait. */
  #queue: QueuedFrame[] | undefined;
  /** The size of the frames in the queue, in UTF-16 units (bytes, for ASCII JSON). */
  #queuedSize = 0;
  #state: State | undefined;
  #inFlight = 0;
  #pumping = false;
  #closed = false;
  #abort: AbortController | undefined;
  #onClosed: (() => void)[] | undefined;
  #boundChannels: Map<object, object> | undefined;
  #bucket: TokenBucket | undefined;
  #violations: Violations | undefined;
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

  /** Queue entries waiting their turn (a run of refusals is one), for tests and metrics. */
  get queuedEntries(): number {
    return this.#queue?.length ?? 0;
  }

  /** The app that serves this connection, as handlers see it (`ctx.app`). */
  get app(): AppView<State> {
    return this.#host as unknown as AppView<State>;
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
    try {
      this.#socket.close(code, reason);
    } catch (error) {
      this.#host.reportError(error, { connection: this, phase: "send" });
    }
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
    const limit = this.#host.limits.maxMessageBytes;
    if ((byteLength ?? utf8Length(text, limit)) > limit) this.receiveTooLarge();
    else this.#enqueue(text, text.length);
  }

  /** Feeds a text frame that the adapter measured above the app's limit, without decoding it. */
  receiveTooLarge(): void {
    const limit = this.#host.limits.maxMessageBytes;
    this.#enqueue(
      errorFrame(ErrorCode.MESSAGE_TOO_LARGE, ErrorMessage.tooLarge(limit), undefined),
      0,
    );
  }

  /** Feeds a binary frame: it is refused, in its turn. */
  receiveBinary(): void {
    this.#enqueue(errorFrame(ErrorCode.INVALID_MESSAGE, ErrorMessage.binaryFrame, undefined), 0);
  }

  /** Tells the session its socket closed: subscriptions end, pending frames are dropped. */
  handleClose(code = 1005, reason = ""): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = undefined;
    this.#queuedSize = 0;
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
      this.close(CloseCode.internalError, "Send failed");
    }
  }

  #enqueue(frame: string | ErrorFrame, size: number): void {
    if (this.#closed || this.#draining || this.#closing) return;
    const refusal = this.#refusal(size);
    if (refusal !== undefined) {
      this.#refuse(refusal);
      return;
    }
    // The common case: nothing waiting, nothing running. Serve at once, without a queue.
    if (!this.#pumping && !this.#queue?.length && this.#inFlight < this.#host.limits.concurrency) {
      this.#pumping = true;
      this.#run(frame);
      this.#pumping = false;
      this.#settled();
      return;
    }
    this.#queue ??= [];
    this.#queue.push(frame);
    this.#queuedSize += size;
    this.#pump();
  }

  /**
   * Why a new frame of `size` may not be taken, if it may not: over the rate limit, or it
   * would have to wait in a queue already at its length or size.
   */
  #refusal(size: number): string | undefined {
    const limits = this.#host.limits;
    if (limits.rateLimit !== false) {
      this.#bucket ??= new TokenBucket(limits.rateLimit);
      if (!this.#bucket.take()) return ErrorMessage.rateLimited(limits.rateLimit.messagesPerSecond);
    }
    const waiting = this.#queue?.length ?? 0;
    if (waiting === 0 && !this.#pumping && this.#inFlight < limits.concurrency) return undefined;
    if (waiting >= limits.maxQueuedMessages)
      return ErrorMessage.queueFull(limits.maxQueuedMessages);
    if (this.#queuedSize + size > limits.maxQueuedBytes) {
      return ErrorMessage.queueBytesFull(limits.maxQueuedBytes);
    }
    return undefined;
  }

  /**
   * Answers a refused frame with RATE_LIMITED in its turn, without keeping the frame: a run
   * of refusals is one queue entry. Too many refusals in a row close the connection with
   * 1008.
   */
  #refuse(message: string): void {
    const { maxViolations } = this.#host.limits;
    this.#violations ??= new Violations();
    if (this.#violations.add(maxViolations) > maxViolations) {
      this.#unsubscribeAll();
      this.close(CloseCode.policyViolation, "Rate limit abuse");
      return;
    }
    const queue = this.#queue;
    if (!queue?.length && !this.#pumping && this.#inFlight === 0) {
      this.#sendText(errorText(ErrorCode.RATE_LIMITED, message, undefined));
      return;
    }
    const last = queue?.[queue.length - 1];
    if (last instanceof Refusals && last.message === message) last.count++;
    else {
      this.#queue ??= [];
      this.#queue.push(new Refusals(message));
    }
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
      const { concurrency } = this.#host.limits;
      while (this.#queue?.length && this.#inFlight < concurrency) {
        const frame = this.#queue.shift() as QueuedFrame;
        if (typeof frame === "string") this.#queuedSize -= frame.length;
        this.#run(frame);
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
    if (this.onIdle && !this.#closed) {
      try {
        this.onIdle();
      } catch (error) {
        this.#host.reportError(error, { connection: this, phase: "persist" });
      }
    }
    if (this.#onDrained) for (const resolve of this.#onDrained.splice(0)) resolve();
  }

  /** Serves one frame; returns a promise only when it has to wait (never rejects). */
  #serve(frame: QueuedFrame): Promise<void> | undefined {
    if (typeof frame !== "string") {
      if (frame instanceof Refusals) {
        for (let i = 0; i < frame.count; i++) this.#sendText(frame.text);
      } else this.#sendText(JSON.stringify(frame));
      return undefined;
    }
    if (frame === PING_FRAME) {
      this.#sendText(PONG_FRAME);
      return undefined;
    }
    const parsed = parseFrame(frame, this.#host.limits.maxNameLength);
    switch (parsed.type) {
      case "error":
        this.#sendText(JSON.stringify(parsed));
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
   * Serves an action through its pipeline. Synchronous as long as the pipeline is (a sync
   * schema, a handler that returns a value): no promise, no microtask, the answer written
   * in the same turn. It returns a promise only when it has to wait.
   */
  #action(frame: ActionFrame): Promise<void> | undefined {
    const { channel: name, id } = frame;
    const action = this.#host.findAction(name);
    if (!action) {
      this.#sendText(errorText(ErrorCode.NOT_FOUND, ErrorMessage.actionNotFound(name), id, name));
      return undefined;
    }
    const ctx = new HandlerContext(this, id, action.channels, name);
    let result: unknown;
    try {
      result = action.pipeline.run(frame.data, ctx);
      if (!isThenable(result)) {
        this.#completed(ctx, result);
        return undefined;
      }
    } catch (error) {
      this.#fail(ctx, "action", error);
      return undefined;
    }
    return this.#whenSettled(ctx, "action", result);
  }

  /** Sends an action's answer; a result that cannot be serialized is an internal error. */
  #completed(ctx: FrameContext, result: unknown): void {
    if (ctx.ended) return;
    let text: string;
    try {
      text = completedFrame(ctx.name, result, ctx.id);
    } catch (error) {
      this.#fail(ctx, "action", error);
      return;
    }
    ctx.ended = true;
    this.#sendText(text);
  }

  /**
   * Waits for a frame's handling to settle, at most `handlerTimeout`: then the client gets
   * `HANDLER_TIMEOUT`, the handler's signal is aborted and its place freed. Answers the
   * frame exactly once; never rejects.
   */
  #whenSettled(
    ctx: FrameContext,
    phase: "action" | "subscribe",
    pending: PromiseLike<unknown>,
  ): Promise<void> {
    return new Promise<void>((done) => {
      const timeout = this.#host.limits.handlerTimeout;
      const timer =
        timeout === false ? undefined : setTimeout(() => this.#timedOut(ctx, phase, done), timeout);
      (timer as { unref?: () => void } | undefined)?.unref?.();
      const stop = (): void => {
        if (timer !== undefined) clearTimeout(timer);
      };
      Promise.resolve(pending).then(
        (value) => {
          stop();
          if (phase === "action") this.#completed(ctx, value);
          done();
        },
        (error: unknown) => {
          stop();
          this.#fail(ctx, phase, error);
          done();
        },
      );
    });
  }

  #timedOut(ctx: FrameContext, phase: string, done: () => void): void {
    if (ctx.ended) return;
    const timeout = this.#host.limits.handlerTimeout as number;
    const error = new HandlerTimeoutError(ctx.name, timeout);
    ctx.abandon(error);
    this.#host.reportError(error, { connection: this, channel: ctx.name, phase });
    this.#sendText(
      errorText(ErrorCode.HANDLER_TIMEOUT, ErrorMessage.handlerTimeout(timeout), ctx.id, ctx.name),
    );
    done();
  }

  #subscribe(frame: SubscribeFrame): Promise<void> | undefined {
    const { channel: name, id } = frame;
    const match = this.#host.findChannel(name);
    if (!match) {
      this.#sendText(errorText(ErrorCode.NOT_FOUND, ErrorMessage.channelNotFound(name), id, name));
      return undefined;
    }
    const { maxSubscriptions } = this.#host.limits;
    // A place held for a channel not yet subscribed to; subscribing again is always fine.
    const reserves = !this.subscriptions.has(name);
    if (reserves && this.subscriptions.size + this.#subscribing >= maxSubscriptions) {
      this.#sendText(
        errorText(
          ErrorCode.TOO_MANY_SUBSCRIPTIONS,
          ErrorMessage.tooManySubscriptions(maxSubscriptions),
          id,
          name,
        ),
      );
      return undefined;
    }
    if (reserves) this.#subscribing++;
    const ctx = new SubscribeHandlerContext(this, id, match.declaration.channels, name);
    const done = this.#whenSettled(ctx, "subscribe", this.#subscribeSteps(match, frame.data, ctx));
    return reserves ? done.then(() => void this.#subscribing--) : done;
  }

  /** Validate, dependencies, guard, handler, data schema; then the hub; then the answers. */
  async #subscribeSteps(
    match: ChannelMatch,
    data: unknown,
    ctx: SubscribeHandlerContext,
  ): Promise<void> {
    const { declaration } = match;
    const pipeline = declaration.subscribePipeline;
    let given: Record<string, unknown> | undefined;
    if (pipeline.hasSchema) {
      const params = subscribeParams(data, declaration.subscribeKeys, match.nameParams);
      if (!params.ok) throw new InvalidInput(params.issues);
      given = params.value;
    }
    const result = await pipeline.run(given, ctx);
    // Serialized before the client is added: data that cannot be sent refuses the subscribe.
    const initial = declaration.initialData ? dataFrame(ctx.name, result) : undefined;
    // The client may have left, or the handler timed out, while it ran: nobody to add.
    if (ctx.ended || this.#closed) return;
    const name = ctx.name;
    if (!this.subscriptions.has(name)) {
      const clientParams = given ? withoutNameParams(given, match.nameParams) : undefined;
      await this.#host.hub.add(name, this, clientParams);
      if (ctx.ended || this.#closed) {
        if (!this.subscriptions.has(name)) this.#host.hub.remove(name, this);
        return;
      }
      this.#subscriptions ??= new Set();
      this.#subscriptions.add(name);
    }
    ctx.ended = true;
    this.#sendText(replyFrame("subscribed", name, ctx.id));
    if (initial !== undefined) this.#sendText(initial);
  }

  #unsubscribe(frame: UnsubscribeFrame): void {
    const { channel: name, id } = frame;
    if (this.#subscriptions?.delete(name)) this.#host.hub.remove(name, this);
    this.#sendText(replyFrame("unsubscribed", name, id));
  }

  #unsubscribeAll(): void {
    if (!this.#subscriptions) return;
    for (const name of this.#subscriptions) {
      try {
        this.#host.hub.remove(name, this);
      } catch (error) {
        this.#host.reportError(error, { connection: this, channel: name, phase: "subscribe" });
      }
    }
    this.#subscriptions.clear();
  }

  /** Answers a frame whose handling failed, once; never throws, whatever `error` is. */
  #fail(ctx: FrameContext, phase: "action" | "subscribe", error: unknown): void {
    if (ctx.ended) return;
    ctx.ended = true;
    this.#sendText(this.#errorAnswer(error, phase, ctx));
  }

  /**
   * The answer to a failure: INVALID_PARAMS for input that failed its schema, a public
   * error's own code and message, else INTERNAL_ERROR with the real error reported to the
   * app (never to the client).
   */
  #errorAnswer(error: unknown, phase: "action" | "subscribe", ctx: FrameContext): string {
    const { name, id } = ctx;
    if (isInvalidInput(error)) {
      const message =
        phase === "action"
          ? ErrorMessage.invalidActionParams(name)
          : ErrorMessage.invalidChannelParams(name);
      return errorText(ErrorCode.INVALID_PARAMS, message, id, name, error.issues);
    }
    const text = publicErrorText(error, id, name);
    if (text !== undefined) return text;
    // A handler stopped by the connection's own abort signal is not a fault to report.
    if (!(this.#closed && isAbortError(error))) {
      this.#host.reportError(error, { connection: this, channel: name, phase });
    }
    return internalErrorText(id, name);
  }

  #sendText(text: string): boolean {
    if (this.#socket.readyState !== OPEN) return false;
    try {
      const sent = this.#socket.send(text);
      if (sent === 0 || sent === false) return false;
      // A client that stops reading makes its send buffer grow; past the limit it is
      // cut off, so that one slow reader never holds unbounded memory.
      const buffered = this.#socket.bufferedAmount;
      if (buffered !== undefined && buffered > this.#host.limits.maxBufferedBytes) this.#cutOff();
      return true;
    } catch (error) {
      this.#host.reportError(error, { connection: this, phase: "send" });
      return false;
    }
  }
}

// Both checks read what a handler threw, which may be a Proxy whose traps throw.
function isInvalidInput(error: unknown): error is InvalidInput {
  try {
    return error instanceof InvalidInput;
  } catch {
    return false;
  }
}

function isAbortError(error: unknown): boolean {
  try {
    return error instanceof Error && error.name === "AbortError";
  } catch {
    return false;
  }
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
