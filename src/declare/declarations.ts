import type { ActionContext, ChannelContext, SubscribeContext } from "../context.ts";
import { DEFAULT_HISTORY_BYTES, type HistoryOptions } from "../history/history.ts";
import type { ChannelTypes } from "./api-types.ts";
import {
  type ChannelHandle,
  type ChannelHandles,
  type ChannelMount,
  createChannelHandle,
} from "./channel-handle.ts";
import { ChannelTemplate } from "./channel-template.ts";
import { type DependencyPlan, planDependencies } from "./dependency.ts";
import { Pipeline } from "./pipeline.ts";
import { subscribeParamKeys } from "./subscribe-param.ts";
import type { AnySchema } from "./validate.ts";

/**
 * Decides whether a client may run an action or subscribe to a channel. Return `false` to
 * refuse with `FORBIDDEN` and the message `Forbidden.`, or throw a `ForbiddenError` to
 * choose the message.
 */
export type Guard<TInput, TContext> = (
  input: TInput,
  ctx: TContext,
  // biome-ignore lint/suspicious/noConfusingVoidType: a guard that returns nothing allows.
) => boolean | void | Promise<boolean | void>;

// biome-ignore lint/suspicious/noExplicitAny: declarations are stored untyped; the router keeps the types.
type Untyped = any;

/** How an action was declared, as the router stores it. */
export interface ActionOptions<TInput, TOutput, TContext, THandlerInput> {
  /** The schema of the input the client sends as `data` (absent `data` is `{}`). */
  input?: TInput | undefined;
  /** A schema the handler's result is validated and transformed with before it is sent. */
  output?: TOutput | undefined;
  /** Runs after validation and dependencies, before the handler. */
  guard?: Guard<THandlerInput, TContext> | undefined;
  /** What the action does, for generated documentation. */
  description?: string | undefined;
}

/** How a channel was declared, as the router stores it. */
export interface ChannelOptions<TParams, TData, TContext, THandlerInput, TPresence = unknown> {
  /**
   * The schema of the channel's parameters: those in its name (`rooms/{room}`), those a
   * client may set on subscribe (`subscribeParam`), and those only a broadcast sets.
   */
  params?: TParams | undefined;
  /** A schema the handler's result is validated and transformed with before it is sent. */
  data?: TData | undefined;
  /** Send the handler's result to a client right after `subscribed` (SocketAPI's `default_response`). */
  initialData?: boolean | undefined;
  /** Runs on subscribe, after validation and dependencies, before the handler. */
  guard?: Guard<THandlerInput, TContext> | undefined;
  /** What the channel carries, for generated documentation. */
  description?: string | undefined;
  /**
   * Keep the channel's broadcasts (per concrete name) so that a client that was away gets
   * what it missed: each `data` frame then carries an `offset` and an `epoch`, and a
   * subscribe may ask for everything `since` a position (docs/recovery.md). `ttl` in ms.
   */
  history?: HistoryOptions | undefined;
  /**
   * What each subscriber shows to the others (from its connection's state, not from what
   * the client sends): turns on presence for the channel, so that clients may ask who is
   * here and hear joins and leaves (docs/presence.md). At most 1 KiB as JSON.
   */
  presence?: ((ctx: TContext) => TPresence) | undefined;
}

/** An action: its schemas, guard and handler, shared by every app that serves it. */
export class ActionDeclaration {
  readonly input: AnySchema | undefined;
  readonly output: AnySchema | undefined;
  readonly guard: Guard<unknown, ActionContext<Untyped, Untyped>> | undefined;
  readonly handler: (input: unknown, ctx: ActionContext<Untyped, Untyped>) => unknown;
  readonly dependencies: DependencyPlan | undefined;
  readonly description: string | undefined;
  /** The channel handles of the router that declared it, for `ctx.channels`. */
  readonly channels: ChannelHandles<ChannelTypes>;
  /** Validate → dependencies → guard → handler → output, as this action declares them. */
  readonly pipeline: Pipeline;
  /**
   * Whether its handler is an `async function*`: it streams its answer, as the app's
   * AsyncAPI document and `/docs` say. (A handler that returns an async iterable some other
   * way streams too; it is described as a plain action.)
   */
  readonly streams: boolean;

  constructor(
    options: ActionOptions<AnySchema, AnySchema, Untyped, Untyped>,
    handler: (input: unknown, ctx: ActionContext<Untyped, Untyped>) => unknown,
    channels: ChannelHandles<ChannelTypes>,
  ) {
    this.input = options.input;
    this.output = options.output;
    this.guard = options.guard;
    this.handler = handler;
    this.dependencies = planDependencies(options.input);
    this.description = options.description;
    this.channels = channels;
    this.streams = Object.prototype.toString.call(handler) === "[object AsyncGeneratorFunction]";
    this.pipeline = new Pipeline({
      schema: this.input,
      dependencies: this.dependencies,
      guard: this.guard,
      handler,
      output: this.output,
    });
  }
}

/** A channel: its name template, schemas, guard and handler, and where it is served. */
export class ChannelDeclaration {
  readonly template: ChannelTemplate;
  readonly params: AnySchema | undefined;
  readonly data: AnySchema | undefined;
  readonly initialData: boolean;
  readonly guard: Guard<unknown, SubscribeContext<Untyped, Untyped>> | undefined;
  readonly handler: (params: unknown, ctx: ChannelContext<Untyped, Untyped>) => unknown;
  readonly dependencies: DependencyPlan | undefined;
  readonly description: string | undefined;
  /** How much of its broadcasts it keeps, when it keeps history. */
  readonly history: HistoryOptions | undefined;
  /** What a subscriber shows to the others, when the channel has presence. */
  readonly presence: ((ctx: SubscribeContext<Untyped, Untyped>) => unknown) | undefined;
  /** The keys a client may set on subscribe. */
  readonly subscribeKeys: readonly string[];
  /** The channel handles of the router that declared it, for `ctx.channels`. */
  readonly channels: ChannelHandles<ChannelTypes>;
  /** The apps that serve this channel; a broadcast goes to each. */
  readonly mounts: ChannelMount[] = [];
  /** Calling it broadcasts; the same handle wherever the channel is mounted. */
  readonly handle: ChannelHandle;
  /** What a client's subscribe runs: validate → dependencies → guard → handler → data. */
  readonly subscribePipeline: Pipeline;
  /** What a broadcast runs: validate → dependencies → handler → data (no guard: no client). */
  readonly broadcastPipeline: Pipeline;

  constructor(
    name: string,
    options: ChannelOptions<AnySchema, AnySchema, Untyped, Untyped>,
    handler: (params: unknown, ctx: ChannelContext<Untyped, Untyped>) => unknown,
    channels: ChannelHandles<ChannelTypes>,
  ) {
    this.template = new ChannelTemplate(name);
    this.params = options.params;
    this.data = options.data;
    this.initialData = options.initialData ?? false;
    this.guard = options.guard;
    this.handler = handler;
    this.dependencies = planDependencies(options.params);
    this.description = options.description;
    this.history = options.history && checkedHistory(name, options.history);
    this.presence = options.presence;
    this.subscribeKeys = subscribeParamKeys(options.params);
    this.channels = channels;
    this.#checkNameParams();
    const parts = {
      schema: this.params,
      dependencies: this.dependencies,
      handler,
      output: this.data,
    };
    this.subscribePipeline = new Pipeline({ ...parts, guard: this.guard });
    this.broadcastPipeline = new Pipeline(parts);
    this.handle = createChannelHandle(this);
  }

  #checkNameParams(): void {
    if (this.template.isStatic) return;
    const entries = (this.params as { entries?: Record<string, unknown> } | undefined)?.entries;
    const missing = this.template.params.filter((p) => !entries || !(p in entries));
    if (missing.length > 0) {
      throw new TypeError(
        `Channel '${this.template.name}': its params schema must be an object with ${missing
          .map((p) => `'${p}'`)
          .join(", ")}.`,
      );
    }
  }
}

/**
 * The history options, when they make sense: a whole `size` and a `ttl` above zero, and
 * `maxBytes` (default 1 MiB) a whole number above zero.
 */
function checkedHistory(name: string, history: HistoryOptions): HistoryOptions {
  const { size, ttl, maxBytes = DEFAULT_HISTORY_BYTES } = history;
  if (!Number.isSafeInteger(size) || size < 1) {
    throw new TypeError(`Channel '${name}': history.size must be a whole number above 0.`);
  }
  if (typeof ttl !== "number" || !(ttl > 0) || !Number.isFinite(ttl)) {
    throw new TypeError(`Channel '${name}': history.ttl must be a number of milliseconds above 0.`);
  }
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new TypeError(`Channel '${name}': history.maxBytes must be a whole number above 0.`);
  }
  return { size, ttl, maxBytes };
}
