import type { AnySchema } from "./validate.ts";

const SUBSCRIBE_PARAM: unique symbol = Symbol.for("socketapi.subscribeParam");

/** What marks a schema as a subscribe-time parameter. */
export interface SubscribeParamMarker {
  readonly [SUBSCRIBE_PARAM]: true;
}

/** A channel parameter that a client may set when it subscribes. */
export type SubscribeParam<TSchema extends AnySchema> = TSchema & SubscribeParamMarker;

/**
 * Marks a channel parameter as settable by the client when it subscribes (SocketAPI's
 * `RequiredOnSubscribe`). A subscribing client can set only marked parameters; the others
 * take their schema defaults. Wrap the outermost schema of the entry.
 *
 * @example
 * ```ts
 * app.channel("private", {
 *   params: v.object({ token: subscribeParam(v.string()), text: v.optional(v.string(), "") }),
 *   initialData: true,
 * }, ({ token }) => { if (token !== "secret") throw new ForbiddenError(); return { ok: true }; });
 * // client: {"type":"subscribe","channel":"private","data":{"token":"secret"}}
 * ```
 */
export function subscribeParam<TSchema extends AnySchema>(
  schema: TSchema,
): SubscribeParam<TSchema> {
  return { ...schema, [SUBSCRIBE_PARAM]: true };
}

/** The keys of an object schema's entries that a client may set on subscribe. */
export function subscribeParamKeys(schema: AnySchema | undefined): string[] {
  const entries = (schema as { entries?: Record<string, AnySchema> } | undefined)?.entries;
  if (!entries || typeof entries !== "object") return [];
  return Object.keys(entries).filter(
    (key) => (entries[key] as Partial<SubscribeParam<AnySchema>>)[SUBSCRIBE_PARAM] === true,
  );
}
