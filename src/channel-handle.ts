import type { ChannelType, ChannelTypes, Empty } from "./api-types.ts";
import type { ChannelTemplate } from "./channel-template.ts";
import type { ChannelDeclaration } from "./declarations.ts";
import { resolveDependencies } from "./dependency.ts";
import { InvalidChannelParamsError } from "./errors.ts";
import type { Subscriber } from "./hub.ts";
import { parseOutput, validate } from "./validate.ts";

export type { ChannelTypes } from "./api-types.ts";

/** Where a declared channel is served: an app, under the channel's full name there. */
export interface ChannelMount {
  /** Serializes `data` once and sends it to the subscribers of `concreteName` in that app. */
  publish(concreteName: string, data: unknown, origin?: Subscriber): number | Promise<number>;
  /** The channel's template in that app, router prefixes included. */
  readonly template: ChannelTemplate;
}

// Parameters may be left out when the channel has none or when all of them are optional.
type Arguments<TParams> = undefined extends TParams
  ? [params?: TParams]
  : Empty extends TParams
    ? [params?: TParams]
    : [params: TParams];

/**
 * Calling a channel handle validates the parameters, runs the channel's handler and
 * broadcasts its result to every subscriber, serialized once. It works inside handlers
 * (`ctx.channels.chat(...)`) and outside them (`app.channels.chat(...)` from a timer or an
 * HTTP route). It resolves with the number of subscribers the frame was sent to.
 *
 * @example
 * ```ts
 * await app.channels.chat({ message: "Hello" });
 * await app.channels["rooms/{room}"]({ room: "42", text: "hi" }); // only rooms/42
 * ```
 */
export interface ChannelHandle<T extends ChannelType = ChannelType> {
  (...params: Arguments<T["params"]>): Promise<number>;
  /** The channel's name as declared, e.g. `rooms/{room}`. */
  readonly channelName: string;
}

/** The handles of a set of channels, by name. */
export type ChannelHandles<TChannels extends ChannelTypes> = {
  readonly [K in keyof TChannels]: ChannelHandle<TChannels[K]>;
};

/** The parameter values a concrete name is built from: those given, else the validated ones. */
export function nameValues(
  template: ChannelTemplate,
  given: unknown,
  validated: unknown,
): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  const from = (given ?? {}) as Record<string, unknown>;
  const fallback = (validated ?? {}) as Record<string, unknown>;
  for (const param of template.params) {
    values[param] = Object.hasOwn(from, param) ? from[param] : fallback[param];
  }
  return values;
}

/**
 * Runs a broadcast of a declared channel: validates, runs the handler, publishes in every
 * app that serves it. `origin` is the connection whose handler broadcast, if any. When
 * everything is synchronous (a sync schema and handler, a hub in memory) it all happens
 * before this returns; the promise only carries the count.
 */
export function broadcast(
  declaration: ChannelDeclaration,
  params: unknown,
  origin: Subscriber | undefined,
): Promise<number> {
  try {
    const { mounts, template } = declaration;
    if (mounts.length === 0) {
      throw new Error(
        `Channel '${template.name}' is not served by any app: include its router in an app first.`,
      );
    }
    const given = params ?? {};
    const checked = declaration.params ? validate(declaration.params, given) : undefined;
    if (checked instanceof Promise || declaration.dependencies || declaration.data) {
      return broadcastFully(declaration, given, origin);
    }
    if (checked && !checked.ok) throw new InvalidChannelParamsError(template.name, checked.issues);
    const value = checked?.value;
    const values = nameValues(template, given, value);
    const data = declaration.handler(value, broadcastContext(declaration, values));
    if (isThenable(data)) {
      return Promise.resolve(data).then((settled) =>
        publishAll(declaration, values, settled, origin),
      );
    }
    return publishAll(declaration, values, data, origin);
  } catch (error) {
    return Promise.reject(error);
  }
}

/** The general path: an async schema or handler, dependencies, a data schema. */
async function broadcastFully(
  declaration: ChannelDeclaration,
  given: unknown,
  origin: Subscriber | undefined,
): Promise<number> {
  const { template } = declaration;
  let value: unknown;
  if (declaration.params) {
    const result = await validate(declaration.params, given);
    if (!result.ok) throw new InvalidChannelParamsError(template.name, result.issues);
    value = result.value;
  }
  const values = nameValues(template, given, value);
  const ctx = broadcastContext(declaration, values);
  if (declaration.dependencies)
    value = await resolveDependencies(declaration.dependencies, value, ctx);
  let data = await declaration.handler(value, ctx);
  if (declaration.data) data = await parseOutput(declaration.data, data);
  return publishAll(declaration, values, data, origin);
}

function broadcastContext(declaration: ChannelDeclaration, values: Record<string, unknown>) {
  return {
    event: "broadcast" as const,
    channel: (declaration.mounts[0] as ChannelMount).template.fill(values),
    channels: declaration.channels,
  };
}

/** Publishes the data in every app that serves the channel; resolves with the deliveries. */
function publishAll(
  declaration: ChannelDeclaration,
  values: Record<string, unknown>,
  data: unknown,
  origin: Subscriber | undefined,
): Promise<number> {
  let delivered = 0;
  let pending: Promise<number>[] | undefined;
  for (const mount of declaration.mounts) {
    const count = mount.publish(mount.template.fill(values), data, origin);
    if (typeof count === "number") delivered += count;
    else {
      pending ??= [];
      pending.push(count);
    }
  }
  if (!pending) return Promise.resolve(delivered);
  return Promise.all(pending).then((counts) =>
    counts.reduce((sum, count) => sum + count, delivered),
  );
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

const declarations = new WeakMap<object, ChannelDeclaration>();

/** Creates the callable handle of a declared channel. */
export function createChannelHandle(declaration: ChannelDeclaration): ChannelHandle {
  const handle = (params?: unknown): Promise<number> => broadcast(declaration, params, undefined);
  declarations.set(handle, declaration);
  return Object.defineProperty(handle, "channelName", {
    value: declaration.template.name,
    enumerable: true,
  }) as ChannelHandle;
}

/**
 * The same handles, broadcasting on behalf of `origin`: what `ctx.channels` holds in a
 * connection's handlers, so that a hub spread over places knows where a broadcast starts.
 */
export function bindChannelHandles<T extends object>(handles: T, origin: Subscriber): T {
  return new Proxy(handles, {
    get(target, key) {
      const handle = Reflect.get(target, key);
      const declaration = typeof handle === "function" ? declarations.get(handle) : undefined;
      if (!declaration) return handle;
      const bound = (params?: unknown): Promise<number> => broadcast(declaration, params, origin);
      return Object.defineProperty(bound, "channelName", { value: declaration.template.name });
    },
  });
}
