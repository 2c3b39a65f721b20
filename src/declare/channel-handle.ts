import type { AppView, ErrorInfo } from "../context.ts";
import { InvalidChannelParamsError } from "../errors.ts";
import type { Hub } from "../hub/hub.ts";
import type { Target } from "../hub/target.ts";
import type { WireIssue } from "../protocol/protocol.ts";
import { isWellFormed } from "../protocol/utf8.ts";
import { isThenable } from "../thenable.ts";
import type { ChannelType, ChannelTypes, Empty } from "./api-types.ts";
import type { ChannelTemplate } from "./channel-template.ts";
import type { ChannelDeclaration } from "./declarations.ts";
import { InvalidInput } from "./pipeline.ts";

export type { ChannelTypes } from "./api-types.ts";

/**
 * The connection whose handler broadcasts: the broadcast starts in the hub of the place
 * that holds it (its process, its Durable Object).
 */
export interface BroadcastOrigin {
  readonly hub: Hub;
}

/** Where a declared channel is served: an app, under the channel's full name there. */
export interface ChannelMount {
  /** Serializes `data` once and sends it to the subscribers of `concreteName` in that app. */
  publish(
    concreteName: string,
    data: unknown,
    origin?: BroadcastOrigin,
    target?: Target,
  ): number | Promise<number>;
  /** The channel's template in that app, router prefixes included. */
  readonly template: ChannelTemplate;
  /** Tells that app's `onError` of a failed broadcast. */
  reportError(error: unknown, info: ErrorInfo): void;
  /** The app, as a broadcast's handler sees it (`ctx.app`). */
  readonly app: AppView<object>;
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
 * HTTP route). It resolves with the number of subscribers the frame was sent to on this
 * instance (with a relay, the other instances deliver too, without telling back).
 *
 * @example
 * ```ts
 * await app.channels.chat({ message: "Hello" });
 * await app.channels["rooms/{room}"]({ room: "42", text: "hi" }); // only rooms/42
 * ```
 */
export interface ChannelHandle<T extends ChannelType = ChannelType> extends TargetedHandle<T> {
  /** The channel's name as declared, e.g. `rooms/{room}`. */
  readonly channelName: string;
  /**
   * Broadcasts to every subscriber but one connection (the sender, usually), here and on
   * every instance. Kept in the channel's history like any broadcast.
   *
   * @example
   * ```ts
   * await ctx.channels.chat.except(ctx.connection)({ message: "hi, everyone else" });
   * ```
   */
  except(connection: { readonly id: string } | string): TargetedHandle<T>;
  /**
   * Sends to one connection, by its id (`ctx.connection.id`), if it is subscribed to the
   * channel, on whichever instance holds it. Not kept in history.
   *
   * @example
   * ```ts
   * await app.channels.notices.to(connectionId)({ text: "only for you" });
   * ```
   */
  to(connectionId: string): TargetedHandle<T>;
  /**
   * Sends to every connection of one user (the app's `userId` option) subscribed to the
   * channel, on every instance: all of a person's tabs and devices. Not kept in history.
   * Resolves with how many it reached on this instance: the others deliver without telling
   * back (a user connected elsewhere is reached, and counts 0 here).
   *
   * @example
   * ```ts
   * await app.channels.notices.toUser("ada")({ text: "on all your devices" });
   * ```
   */
  toUser(userId: string): TargetedHandle<T>;
}

/** A channel handle narrowed to some of its subscribers: calling it broadcasts to them. */
export type TargetedHandle<T extends ChannelType = ChannelType> = (
  ...params: Arguments<T["params"]>
) => Promise<number>;

/** The handles of a set of channels, by name. */
export type ChannelHandles<TChannels extends ChannelTypes> = {
  readonly [K in keyof TChannels]: ChannelHandle<TChannels[K]>;
};

/** The issue for a value that cannot fill a segment of a channel name. */
const SEGMENT_ISSUE =
  "A parameter in a channel name must be one segment: a non-empty string or number without '/', in well-formed Unicode.";

/**
 * The parameter values a concrete name is built from: those given, else the validated
 * ones. Each must be one segment: a value with a `/` would build the name of another
 * channel (`{room: "42/admin"}` would reach `rooms/42/admin`, past its guard), an empty
 * one a name nobody can subscribe to.
 */
export function nameValues(
  template: ChannelTemplate,
  given: unknown,
  validated: unknown,
): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  const from = (given ?? {}) as Record<string, unknown>;
  const fallback = (validated ?? {}) as Record<string, unknown>;
  let issues: WireIssue[] | undefined;
  for (const param of template.params) {
    const value = Object.hasOwn(from, param) ? from[param] : fallback[param];
    if (isSegment(value)) values[param] = value;
    else {
      issues ??= [];
      issues.push({ message: SEGMENT_ISSUE, path: [param] });
    }
  }
  if (issues) throw new InvalidChannelParamsError(template.name, issues);
  return values;
}

function isSegment(value: unknown): boolean {
  if (typeof value === "number") return Number.isFinite(value);
  if (typeof value === "bigint") return true;
  return typeof value === "string" && value !== "" && !value.includes("/") && isWellFormed(value);
}

/**
 * Runs a broadcast of a declared channel: validates, runs the handler, publishes in every
 * app that serves it. `origin` is the connection whose handler broadcast, if any. When
 * everything is synchronous (a sync schema and handler, a hub in memory) it all happens
 * before this returns; the promise only carries the count. Never throws: every failure is
 * the returned promise's rejection, {@link InvalidChannelParamsError} for parameters that
 * fail the schema or cannot make a channel name.
 */
export function broadcast(
  declaration: ChannelDeclaration,
  params: unknown,
  origin: BroadcastOrigin | undefined,
  target?: Target,
): Promise<number> {
  try {
    const { mounts, template, broadcastPipeline } = declaration;
    if (mounts.length === 0) {
      throw new Error(
        `Channel '${template.name}' is not served by any app: include its router in an app first.`,
      );
    }
    const given = params ?? {};
    const validated = broadcastPipeline.validate(given);
    if (isThenable(validated)) {
      return Promise.resolve(validated).then(
        (value) => publishValidated(declaration, given, value, origin, target),
        (error: unknown) => Promise.reject(asChannelError(declaration, error)),
      );
    }
    return Promise.resolve(publishValidated(declaration, given, validated, origin, target));
  } catch (error) {
    return Promise.reject(asChannelError(declaration, error));
  }
}

/** Everything after validation: the name, then dependencies, handler and data schema. */
function publishValidated(
  declaration: ChannelDeclaration,
  given: unknown,
  value: unknown,
  origin: BroadcastOrigin | undefined,
  target: Target | undefined,
): number | Promise<number> {
  const values = nameValues(declaration.template, given, value);
  const ctx = broadcastContext(declaration, values);
  const data = declaration.broadcastPipeline.runValidated(value, ctx);
  if (isThenable(data)) {
    return Promise.resolve(data).then((settled) =>
      publishAll(declaration, values, settled, origin, target),
    );
  }
  return publishAll(declaration, values, data, origin, target);
}

/** Input that failed the channel's schema is the caller's fault, named for the channel. */
function asChannelError(declaration: ChannelDeclaration, error: unknown): unknown {
  return error instanceof InvalidInput
    ? new InvalidChannelParamsError(declaration.template.name, error.issues)
    : error;
}

function broadcastContext(declaration: ChannelDeclaration, values: Record<string, unknown>) {
  const mount = declaration.mounts[0] as ChannelMount;
  return {
    event: "broadcast" as const,
    channel: mount.template.fill(values),
    channels: declaration.channels,
    app: mount.app,
  };
}

/** Publishes the data in every app that serves the channel; resolves with the deliveries. */
function publishAll(
  declaration: ChannelDeclaration,
  values: Record<string, unknown>,
  data: unknown,
  origin: BroadcastOrigin | undefined,
  target: Target | undefined,
): number | Promise<number> {
  let delivered = 0;
  let pending: Promise<number>[] | undefined;
  for (const mount of declaration.mounts) {
    const count = mount.publish(mount.template.fill(values), data, origin, target);
    if (typeof count === "number") delivered += count;
    else {
      pending ??= [];
      pending.push(count);
    }
  }
  if (!pending) return delivered;
  return Promise.all(pending).then((counts) =>
    counts.reduce((sum, count) => sum + count, delivered),
  );
}

/**
 * A broadcast started from code: its failure reaches every serving app's `onError`, and
 * its promise counts as handled, so that a handler that forgets to `await` a handle never
 * ends the process with an unhandled rejection. Whoever awaits it still sees the failure.
 */
function reported(declaration: ChannelDeclaration, result: Promise<number>): Promise<number> {
  result.catch((error: unknown) => {
    for (const mount of declaration.mounts) {
      mount.reportError(error, { channel: declaration.template.name, phase: "broadcast" });
    }
  });
  return result;
}

const declarations = new WeakMap<object, ChannelDeclaration>();

/** Creates the callable handle of a declared channel. */
export function createChannelHandle(declaration: ChannelDeclaration): ChannelHandle {
  const handle = targetable(declaration, undefined);
  declarations.set(handle, declaration);
  Object.defineProperty(handle, "channelName", {
    value: declaration.template.name,
    enumerable: true,
  });
  return handle;
}

/**
 * A handle broadcasting on behalf of `origin` (a connection, or none), with its targeted
 * forms: `except`, `to` and `toUser`.
 */
function targetable(declaration: ChannelDeclaration, origin: BroadcastOrigin | undefined) {
  const aimed =
    (target: Target, from = origin) =>
    (params?: unknown): Promise<number> =>
      reported(declaration, broadcast(declaration, params, from, target));
  const handle = (params?: unknown): Promise<number> =>
    reported(declaration, broadcast(declaration, params, origin));
  return Object.assign(handle, {
    except: (connection: { readonly id: string } | string) =>
      typeof connection === "string"
        ? aimed({ except: connection })
        : // The excluded connection's own place (its process, its object) starts the broadcast.
          aimed({ except: connection.id }, originOf(connection) ?? origin),
    to: (connectionId: string) => aimed({ connection: String(connectionId) }),
    toUser: (userId: string) => aimed({ user: String(userId) }),
  }) as unknown as ChannelHandle;
}

/** The place a connection is held in, when it is one of the app's own. */
function originOf(connection: object): BroadcastOrigin | undefined {
  const hub = (connection as { hub?: unknown }).hub;
  return hub && typeof hub === "object" ? (connection as BroadcastOrigin) : undefined;
}

/**
 * The same handles, broadcasting on behalf of `origin`: what `ctx.channels` holds in a
 * connection's handlers, so that a hub spread over places knows where a broadcast starts.
 */
export function bindChannelHandles<T extends object>(handles: T, origin: BroadcastOrigin): T {
  // Made once per channel a connection broadcasts on, not on every broadcast.
  const bound = new Map<ChannelDeclaration, ChannelHandle>();
  return new Proxy(handles, {
    get(target, key) {
      const handle = Reflect.get(target, key);
      const declaration = typeof handle === "function" ? declarations.get(handle) : undefined;
      if (!declaration) return handle;
      let made = bound.get(declaration);
      if (!made) {
        made = targetable(declaration, origin);
        Object.defineProperty(made, "channelName", { value: declaration.template.name });
        bound.set(declaration, made);
      }
      return made;
    },
  });
}
