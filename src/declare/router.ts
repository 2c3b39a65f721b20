import type { SocketAPI } from "../app.ts";
import type {
  ActionContext,
  ChannelContext,
  ConnectionState,
  SubscribeContext,
} from "../context.ts";
import type {
  ActionType,
  ActionTypes,
  ChannelType,
  ChannelTypes,
  ClientChunk,
  ClientInput,
  ClientOutput,
  Empty,
  HandlerInput,
  HandlerReturn,
  Prefixed,
  SubscribeInput,
} from "./api-types.ts";
import type { ChannelHandles } from "./channel-handle.ts";
import {
  ActionDeclaration,
  type ActionOptions,
  ChannelDeclaration,
  type ChannelOptions,
} from "./declarations.ts";
import type { AnySchema } from "./validate.ts";

/** Whether a registry is a router or an app: what its chained declarations return. */
export type RegistryKind = "router" | "app";

/** A router or an app (per `TKind`) with these actions and channels. */
export type Registry<
  TKind extends RegistryKind,
  State extends object,
  Prefix extends string,
  Actions extends ActionTypes,
  Channels extends ChannelTypes,
> = TKind extends "app"
  ? SocketAPI<State, Actions, Channels>
  : Router<State, Prefix, Actions, Channels>;

/**
 * The handler of an action: gets the validated input and the context, returns the result
 * or a promise of it. (The whole return type is one parameter, so that a handler returning
 * a union of objects is inferred as it is.)
 */
export type ActionHandler<TInput, TContext, TReturn> = (input: TInput, ctx: TContext) => TReturn;

/** The handler of a channel: gets the validated parameters, returns the data (or a promise of it). */
export type ChannelHandler<TParams, TContext, TReturn> = (
  params: TParams,
  ctx: TContext,
) => TReturn;

// biome-ignore lint/suspicious/noExplicitAny: a parent may be any router or app.
type AnyRouter = Router<any, any, any, any>;

/** Options of a {@link Router}. */
export interface RouterOptions<TPrefix extends string> {
  /** Put before the name of every action and channel when the router is included. */
  prefix?: TPrefix | undefined;
}

/** Options of {@link Router.include}. */
export interface IncludeOptions<TPrefix extends string> {
  /** Put before the names of the included router (before its own prefix, if it has one). */
  prefix?: TPrefix | undefined;
}

/**
 * Groups actions and channels; `app.include(router)` serves them, with the router's
 * prefix before every name. Declarations chain, so that the router's type carries every
 * action and channel for the typed client.
 *
 * @example
 * ```ts
 * const admin = new Router({ prefix: "admin." })
 *   .channel("stats", {}, () => ({ users: 3 }))
 *   .action("refresh", {}, async (_, ctx) => { await ctx.channels.stats(); });
 * const app = new SocketAPI().include(admin); // serves admin.stats and admin.refresh
 * ```
 */
export class Router<
  State extends object = ConnectionState,
  Prefix extends string = "",
  Actions extends ActionTypes = Empty,
  Channels extends ChannelTypes = Empty,
  Kind extends RegistryKind = "router",
> {
  /** Put before every name when this router is included. */
  readonly prefix: Prefix;
  /** The handles of this router's channels, by name (without this router's prefix). */
  readonly channels: ChannelHandles<Channels>;
  /** Declared actions, by name without this router's prefix. */
  protected readonly actionDeclarations: Map<string, ActionDeclaration> = new Map();
  /** Declared channels, by name template without this router's prefix. */
  protected readonly channelDeclarations: Map<string, ChannelDeclaration> = new Map();
  /** The routers and apps that include this one, with the prefix each includes it under. */
  readonly #parents: { readonly parent: AnyRouter; readonly prefix: string }[] = [];

  constructor(options: RouterOptions<Prefix> = {}) {
    this.prefix = (options.prefix ?? "") as Prefix;
    this.channels = {} as ChannelHandles<Channels>;
  }

  /**
   * Declares an action: a request the client sends with `{"type":"action","channel":NAME,
   * "data":INPUT}`, answered by `{"type":"action","status":"completed","data":RESULT}`.
   *
   * @example
   * ```ts
   * app.action("add_numbers", { input: v.object({ a: v.number(), b: v.number() }) },
   *   ({ a, b }) => a + b);
   * ```
   */
  action<TName extends string, TReturn>(
    name: TName,
    handler: ActionHandler<undefined, ActionContext<State, Channels>, TReturn>,
  ): Registry<
    Kind,
    State,
    Prefix,
    Actions &
      Record<
        TName,
        ActionType<undefined, ClientOutput<undefined, TReturn>, ClientChunk<undefined, TReturn>>
      >,
    Channels
  >;
  action<
    TName extends string,
    TReturn extends HandlerReturn<TOutput>,
    TInput extends AnySchema | undefined = undefined,
    TOutput extends AnySchema | undefined = undefined,
  >(
    name: TName,
    options: ActionOptions<TInput, TOutput, ActionContext<State, Channels>, HandlerInput<TInput>>,
    handler: ActionHandler<HandlerInput<TInput>, ActionContext<State, Channels>, TReturn>,
  ): Registry<
    Kind,
    State,
    Prefix,
    Actions &
      Record<
        TName,
        ActionType<
          ClientInput<TInput>,
          ClientOutput<TOutput, TReturn>,
          ClientChunk<TOutput, TReturn>
        >
      >,
    Channels
  >;
  action(name: string, ...args: unknown[]): unknown {
    const [options, handler] = (args.length === 1 ? [{}, args[0]] : args) as ConstructorParameters<
      typeof ActionDeclaration
    >;
    this.adoptAction(
      name,
      new ActionDeclaration(options, handler, this.channels as ChannelHandles<ChannelTypes>),
    );
    return this;
  }

  /**
   * Declares a channel: clients subscribe with `{"type":"subscribe","channel":NAME}` and
   * receive `{"type":"data","channel":NAME,"data":...}` whenever its handle is called.
   * The handler runs on every subscribe (throw to refuse) and on every broadcast.
   *
   * @example
   * ```ts
   * const app = new SocketAPI()
   *   .channel("chat", { params: v.object({ message: v.optional(v.string(), "Welcome") }) },
   *     ({ message }) => ({ message }));
   * await app.channels.chat({ message: "Hi" }); // every subscriber gets {"message":"Hi"}
   * ```
   */
  channel<TName extends string, TReturn>(
    name: TName,
    handler: ChannelHandler<undefined, ChannelContext<State, Channels>, TReturn>,
  ): Registry<
    Kind,
    State,
    Prefix,
    Actions,
    Channels & Record<TName, ChannelType<undefined, Empty, Awaited<TReturn>>>
  >;
  channel<
    TName extends string,
    TReturn extends HandlerReturn<TDataSchema>,
    TParams extends AnySchema | undefined = undefined,
    TDataSchema extends AnySchema | undefined = undefined,
    TPresence = unknown,
  >(
    name: TName,
    options: ChannelOptions<
      TParams,
      TDataSchema,
      SubscribeContext<State, Channels>,
      HandlerInput<TParams>,
      TPresence
    >,
    handler: ChannelHandler<HandlerInput<TParams>, ChannelContext<State, Channels>, TReturn>,
  ): Registry<
    Kind,
    State,
    Prefix,
    Actions,
    Channels &
      Record<
        TName,
        ChannelType<
          ClientInput<TParams>,
          SubscribeInput<TParams>,
          ClientOutput<TDataSchema, TReturn>,
          Awaited<TPresence>
        >
      >
  >;
  channel(name: string, ...args: unknown[]): unknown {
    const [options, handler] = (args.length === 1 ? [{}, args[0]] : args) as [
      ConstructorParameters<typeof ChannelDeclaration>[1],
      ConstructorParameters<typeof ChannelDeclaration>[2],
    ];
    this.adoptChannel(
      name,
      new ChannelDeclaration(name, options, handler, this.channels as ChannelHandles<ChannelTypes>),
    );
    return this;
  }

  /**
   * Serves a router's actions and channels here, with `options.prefix` and then the
   * router's own prefix before their names (FastAPI's `include_router(router, prefix=...)`).
   * Both prefixes are inferred, also for a router made with an explicit state type
   * (`new Router<State>()`). Declarations the router gets later are served too.
   *
   * @example
   * ```ts
   * const chat = new Router<{ user: string }>().action("post", (_, ctx) => ctx.connection.state.user);
   * const app = new SocketAPI<{ user: string }>().include(chat, { prefix: "chat/" }); // chat/post
   * ```
   */
  include<
    TPrefix extends string,
    TActions extends ActionTypes,
    TChannels extends ChannelTypes,
    const TIncludePrefix extends string = "",
  >(
    router: Router<State, TPrefix, TActions, TChannels, "router">,
    options: IncludeOptions<TIncludePrefix> = {},
  ): Registry<
    Kind,
    State,
    Prefix,
    Actions & Prefixed<`${TIncludePrefix}${TPrefix}`, TActions>,
    Channels & Prefixed<`${TIncludePrefix}${TPrefix}`, TChannels>
  > {
    if ((router as unknown) === this) {
      throw new TypeError("A router cannot include itself.");
    }
    const prefix = options.prefix ?? "";
    router.#parents.push({ parent: this, prefix });
    for (const [name, declaration] of router.actionDeclarations) {
      this.adoptAction(prefix + router.prefix + name, declaration);
    }
    for (const [name, declaration] of router.channelDeclarations) {
      this.adoptChannel(prefix + router.prefix + name, declaration);
    }
    return this as unknown as Registry<
      Kind,
      State,
      Prefix,
      Actions & Prefixed<`${TIncludePrefix}${TPrefix}`, TActions>,
      Channels & Prefixed<`${TIncludePrefix}${TPrefix}`, TChannels>
    >;
  }

  /** Records an action under `name` and passes it on to the routers and apps that include this one. */
  protected adoptAction(name: string, declaration: ActionDeclaration): void {
    if (this.actionDeclarations.has(name))
      throw new TypeError(`Action '${name}' is declared twice.`);
    this.actionDeclarations.set(name, declaration);
    for (const { parent, prefix } of this.#parents) {
      parent.adoptAction(prefix + this.prefix + name, declaration);
    }
  }

  /** Records a channel under `name` and passes it on to the routers and apps that include this one. */
  protected adoptChannel(name: string, declaration: ChannelDeclaration): void {
    if (this.channelDeclarations.has(name))
      throw new TypeError(`Channel '${name}' is declared twice.`);
    this.channelDeclarations.set(name, declaration);
    (this.channels as Record<string, unknown>)[name] = declaration.handle;
    for (const { parent, prefix } of this.#parents) {
      parent.adoptChannel(prefix + this.prefix + name, declaration);
    }
  }
}
