import type * as v from "valibot";
import type { ContextOnlyMarker } from "./dependency.ts";
import type { SubscribeParamMarker } from "./subscribe-param.ts";
import type { AnySchema } from "./validate.ts";

/**
 * What a client can know of one action: the input it sends, the output it receives and,
 * for a streaming action (a handler that returns an async iterable), the chunks that come
 * before it (`never` for one that does not stream). These types are what
 * `createClient<typeof app>` infers from.
 */
export interface ActionType<TInput = unknown, TOutput = unknown, TChunk = never> {
  readonly input: TInput;
  readonly output: TOutput;
  readonly chunk: TChunk;
}

/**
 * What a client and the server can know of one channel: the parameters a broadcast takes,
 * those a client may send on subscribe, and the data every subscriber receives.
 */
export type ChannelType<
  TParams = unknown,
  TSubscribe = unknown,
  TData = unknown,
  TPresence = unknown,
> = {
  readonly params: TParams;
  readonly subscribe: TSubscribe;
  readonly data: TData;
} & (unknown extends TPresence
  ? Record<never, never>
  : {
      /** What a member shows on a channel with presence. */
      readonly presence: TPresence;
    });

/** The actions of an app or router, by name. */
// biome-ignore lint/suspicious/noExplicitAny: any action type fits; the app narrows it.
export type ActionTypes = Record<string, ActionType<any, any, any>>;

/** The channels of an app or router, by (template) name. */
// biome-ignore lint/suspicious/noExplicitAny: any channel type fits; the app narrows it.
export type ChannelTypes = Record<string, ChannelType<any, any, any>>;

/** No actions or channels yet. */
export type Empty = Record<never, never>;

/** The input a handler receives: the schema's output, or `undefined` without a schema. */
export type HandlerInput<TSchema extends AnySchema | undefined> = TSchema extends AnySchema
  ? v.InferOutput<TSchema>
  : undefined;

/** The keys of an object schema's entries that are filled from the context, not the client. */
type ContextOnlyKeys<TEntries> = {
  [K in keyof TEntries]: TEntries[K] extends ContextOnlyMarker ? K : never;
}[keyof TEntries];

/** An object's input without the keys filled from the context. */
type WithoutContextOnly<TInput, TEntries> = [ContextOnlyKeys<TEntries>] extends [never]
  ? TInput
  : { [K in keyof TInput as K extends ContextOnlyKeys<TEntries> ? never : K]: TInput[K] };

/**
 * The input a client sends: the schema's input (without the keys of context-only
 * dependencies), or nothing without a schema.
 */
export type ClientInput<TSchema extends AnySchema | undefined> = TSchema extends AnySchema
  ? TSchema extends { readonly entries: infer TEntries }
    ? WithoutContextOnly<v.InferInput<TSchema>, TEntries>
    : v.InferInput<TSchema>
  : undefined;

/**
 * What a handler may return, given an optional output schema: the schema's input (or a
 * promise of it), or anything without a schema.
 */
export type HandlerReturn<TOutput extends AnySchema | undefined> = TOutput extends AnySchema
  ?
      | v.InferInput<TOutput>
      | Promise<v.InferInput<TOutput>>
      | AsyncIterable<v.InferInput<TOutput>>
      | Promise<AsyncIterable<v.InferInput<TOutput>>>
  : unknown;

/**
 * What the client receives, given an optional output schema and what the handler returns
 * (a promise is awaited; of a stream, what it returns at its end).
 */
export type ClientOutput<TOutput extends AnySchema | undefined, TReturn> = TOutput extends AnySchema
  ? Awaited<TReturn> extends AsyncIterable<unknown>
    ? v.InferOutput<TOutput> | undefined
    : v.InferOutput<TOutput>
  : Awaited<TReturn> extends AsyncGenerator<unknown, infer TResult, never>
    ? TResult
    : Awaited<TReturn> extends AsyncIterable<unknown>
      ? undefined
      : Awaited<TReturn>;

/**
 * The chunks a streaming action sends before its output (each value its handler's async
 * iterable yields, through the output schema if there is one); `never` for an action that
 * does not stream.
 */
export type ClientChunk<TOutput extends AnySchema | undefined, TReturn> =
  Awaited<TReturn> extends AsyncIterable<infer TValue>
    ? TOutput extends AnySchema
      ? v.InferOutput<TOutput>
      : TValue
    : never;

type MarkedKeys<TEntries> = {
  [K in keyof TEntries]: TEntries[K] extends SubscribeParamMarker ? K : never;
}[keyof TEntries];

type PickMarked<TInput, TEntries> = Pick<TInput, MarkedKeys<TEntries> & keyof TInput>;

/** The parameters a client may send when it subscribes: the entries marked `subscribeParam`. */
export type SubscribeInput<TSchema extends AnySchema | undefined> = TSchema extends AnySchema
  ? TSchema extends { readonly entries: infer TEntries }
    ? PickMarked<v.InferInput<TSchema>, TEntries>
    : Empty
  : Empty;

/** Renames every key of `T` with a prefix, as mounting a router does. */
export type Prefixed<TPrefix extends string, T> = {
  [K in keyof T as K extends string ? `${TPrefix}${K}` : never]: T[K];
};
