import * as v from "valibot";
import type { Context } from "../context.ts";
import { isThenable } from "../thenable.ts";
import type { AnySchema } from "./validate.ts";

const DEPENDENCY: unique symbol = Symbol.for("socketapi.dependency");

// biome-ignore lint/suspicious/noExplicitAny: a resolver's context type is chosen by its author.
type AnyContext = Context<any, any>;

type Resolver = (input: unknown, ctx: AnyContext) => unknown;

/**
 * A schema whose validated value is handed to a resolver; the handler receives what the
 * resolver returned. At the type level its output is the resolver's result, so
 * `v.InferOutput` of an object holding it is what the handler gets.
 */
export type DependencySchema<
  TSchema extends AnySchema,
  TResolved,
> = (TSchema extends v.GenericSchemaAsync
  ? v.GenericSchemaAsync<v.InferInput<TSchema>, TResolved>
  : v.GenericSchema<v.InferInput<TSchema>, TResolved>) & { readonly [DEPENDENCY]: Resolver };

/** The schema of a dependency that takes no input from the client. */
const noInput: v.OptionalSchema<v.UnknownSchema, undefined> = v.optional(v.unknown());

/** Marks, at run time, a dependency that takes nothing from the client. */
const TAKES_NO_INPUT: unique symbol = Symbol.for("socketapi.dependency.noInput");

/** Whether `schema` is a dependency that takes nothing from the client (`depends((ctx) => ...)`). */
export function takesNoInput(schema: unknown): boolean {
  return (schema as { [TAKES_NO_INPUT]?: true } | undefined)?.[TAKES_NO_INPUT] === true;
}

declare const CONTEXT_ONLY: unique symbol;

/**
 * Marks, at the type level only, a dependency that takes nothing from the client
 * (`depends((ctx) => ...)`): its key never appears in the input type a client sees.
 */
export interface ContextOnlyMarker {
  readonly [CONTEXT_ONLY]: true;
}

/**
 * Declares a dependency (SocketAPI's `Depends`): put it in an input or params schema under
 * a key; the client sends the dependency's own input nested under that key; it is
 * validated with `schema`, then `resolve` runs (it may be async and may use the handler's
 * context) and the handler receives its result. Dependencies may nest: a dependency's
 * schema may hold other dependencies, resolved first. Without a schema the dependency
 * takes nothing from the client.
 *
 * @example
 * ```ts
 * const user = depends(v.object({ token: v.string() }), async ({ token }) => findUser(token));
 * app.action("whoami", { input: v.object({ user }) }, ({ user }) => user.name);
 * // client: {"type":"action","channel":"whoami","data":{"user":{"token":"abc"}}}
 *
 * const session = depends((ctx) => ctx.connection?.state.session);
 * ```
 */
export function depends<
  TSchema extends AnySchema,
  TResolved,
  TContext extends AnyContext = Context,
>(
  schema: TSchema,
  resolve: (input: v.InferOutput<TSchema>, ctx: TContext) => TResolved | Promise<TResolved>,
): DependencySchema<TSchema, TResolved>;
export function depends<TResolved, TContext extends AnyContext = Context>(
  resolve: (ctx: TContext) => TResolved | Promise<TResolved>,
): DependencySchema<typeof noInput, TResolved> & ContextOnlyMarker;
export function depends(
  schemaOrResolve: AnySchema | ((ctx: AnyContext) => unknown),
  resolve?: (input: unknown, ctx: AnyContext) => unknown,
): unknown {
  if (typeof schemaOrResolve === "function") {
    const resolveFromContext = schemaOrResolve;
    return {
      ...noInput,
      [DEPENDENCY]: (_input: unknown, ctx: AnyContext) => resolveFromContext(ctx),
      [TAKES_NO_INPUT]: true,
    };
  }
  // A copy of the schema's own properties: valibot schemas are plain objects whose `~run`
  // reads `this`, and `v.pipe` spreads its first schema, which keeps the marker too.
  return { ...schemaOrResolve, [DEPENDENCY]: resolve };
}

/** Where the dependencies of a schema sit, computed once when an action or channel is declared. */
export interface DependencyPlan {
  /** The resolver of the schema itself, when it is a dependency. */
  readonly resolve?: Resolver;
  /** Object entries that hold dependencies, resolved before `resolve`. */
  readonly entries?: readonly (readonly [key: string, plan: DependencyPlan])[];
}

/** Finds the dependencies in `schema`; `undefined` when it has none (the common, fast case). */
export function planDependencies(schema: AnySchema | undefined): DependencyPlan | undefined {
  if (schema === undefined) return undefined;
  const resolve = (schema as { [DEPENDENCY]?: Resolver })[DEPENDENCY];
  const objectEntries = (schema as { entries?: Record<string, AnySchema> }).entries;
  const entries: [string, DependencyPlan][] = [];
  if (objectEntries && typeof objectEntries === "object") {
    for (const [key, entry] of Object.entries(objectEntries)) {
      const plan = planDependencies(entry);
      if (plan) entries.push([key, plan]);
    }
  }
  if (!resolve && entries.length === 0) return undefined;
  return {
    ...(resolve ? { resolve } : {}),
    ...(entries.length > 0 ? { entries } : {}),
  };
}

/**
 * Replaces every dependency's validated input in `value` by its resolver's result, inner
 * dependencies first, one after another in declaration order. Synchronous as long as every
 * resolver is; a promise from the first one that is not.
 */
export function resolveDependencies(
  plan: DependencyPlan,
  value: unknown,
  ctx: AnyContext,
): unknown {
  if (plan.entries && value !== null && typeof value === "object") {
    return resolveEntries(plan, value as Record<string, unknown>, 0, ctx);
  }
  return plan.resolve ? plan.resolve(value, ctx) : value;
}

function resolveEntries(
  plan: DependencyPlan,
  record: Record<string, unknown>,
  from: number,
  ctx: AnyContext,
): unknown {
  const entries = plan.entries ?? [];
  for (let i = from; i < entries.length; i++) {
    const [key, entryPlan] = entries[i] as (typeof entries)[number];
    const resolved = resolveDependencies(entryPlan, record[key], ctx);
    if (isThenable(resolved)) {
      return Promise.resolve(resolved).then((settled) => {
        record[key] = settled;
        return resolveEntries(plan, record, i + 1, ctx);
      });
    }
    record[key] = resolved;
  }
  return plan.resolve ? plan.resolve(record, ctx) : record;
}
