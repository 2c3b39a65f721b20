import { isAsyncIterable } from "../async-iterable.ts";
import { ForbiddenError } from "../errors.ts";
import type { WireIssue } from "../protocol/protocol.ts";
import { isThenable } from "../thenable.ts";
import { type DependencyPlan, resolveDependencies } from "./dependency.ts";
import { type AnySchema, type Validation, validate } from "./validate.ts";

/** Thrown by a pipeline's validation step: the client's input failed the schema. */
export class InvalidInput extends Error {
  /** What failed, in the wire format. */
  readonly issues: WireIssue[];

  constructor(issues: WireIssue[]) {
    super("Invalid input");
    this.name = "InvalidInput";
    this.issues = issues;
  }
}

/** One step of a pipeline: the value so far and the handler's context in, the next value out. */
// biome-ignore lint/suspicious/noExplicitAny: steps are built from declarations with their own context types.
type Step = (value: unknown, ctx: any) => unknown;

/** What a pipeline is made of: the parts of an action or channel declaration. */
export interface PipelineParts {
  /** The schema of the client's input (an action's `input`, a channel's `params`). */
  readonly schema?: AnySchema | undefined;
  /** The dependencies found in that schema. */
  readonly dependencies?: DependencyPlan | undefined;
  /** Decides whether the client may go on. */
  // biome-ignore lint/suspicious/noExplicitAny: see Step.
  readonly guard?: ((value: any, ctx: any) => unknown) | undefined;
  /** The handler. */
  // biome-ignore lint/suspicious/noExplicitAny: see Step.
  readonly handler: (value: any, ctx: any) => unknown;
  /** A schema the handler's result is validated and transformed with. */
  readonly output?: AnySchema | undefined;
}

/**
 * The one path every handler runs on, for actions, subscribes and broadcasts alike:
 * validate → dependencies → guard → handler → output. Each step may return a value or a
 * promise; the pipeline stays synchronous exactly as long as every step is, so a frame
 * whose schema and handler are synchronous is answered in the same turn, with no promise.
 * The steps are made once, from what the declaration has: a feature a declaration does
 * not use costs nothing, and a new one is a new step here, never a flag to check elsewhere.
 *
 * `run` throws (synchronously) or rejects with whatever a step threw; {@link InvalidInput}
 * when the input failed its schema.
 */
export class Pipeline {
  /** Whether the input is validated (without a schema the handler gets `undefined`). */
  readonly hasSchema: boolean;
  readonly #validation: Step | undefined;
  readonly #steps: readonly Step[];

  constructor(parts: PipelineParts) {
    this.hasSchema = parts.schema !== undefined;
    this.#validation = parts.schema && validationStep(parts.schema);
    const steps: Step[] = [];
    if (parts.dependencies) steps.push(dependencyStep(parts.dependencies));
    if (parts.guard) steps.push(guardStep(parts.guard));
    steps.push(parts.handler);
    if (parts.output) steps.push(outputStep(parts.output));
    this.#steps = steps;
  }

  /**
   * The input as the first step receives it: absent data is `{}` when there is a schema;
   * without a schema the handler gets `undefined`, whatever the client sent.
   */
  input(data: unknown): unknown {
    if (!this.hasSchema) return undefined;
    return data === undefined ? {} : data;
  }

  /** Runs every step on the client's (or caller's) raw input. */
  run(data: unknown, ctx: unknown): unknown {
    const input = this.input(data);
    if (!this.#validation) return runSteps(this.#steps, 0, input, ctx);
    const validated = this.#validation(input, ctx);
    if (isThenable(validated)) {
      return Promise.resolve(validated).then((value) => runSteps(this.#steps, 0, value, ctx));
    }
    return runSteps(this.#steps, 0, validated, ctx);
  }

  /** Only the validation step: the validated input, or {@link InvalidInput}. */
  validate(data: unknown): unknown {
    const input = this.input(data);
    return this.#validation ? this.#validation(input, undefined) : input;
  }

  /** The steps after validation, on an input {@link validate} returned. */
  runValidated(value: unknown, ctx: unknown): unknown {
    return runSteps(this.#steps, 0, value, ctx);
  }
}

function runSteps(steps: readonly Step[], from: number, input: unknown, ctx: unknown): unknown {
  let value = input;
  for (let i = from; i < steps.length; i++) {
    value = (steps[i] as Step)(value, ctx);
    if (isThenable(value)) {
      const next = i + 1;
      return Promise.resolve(value).then((settled) => runSteps(steps, next, settled, ctx));
    }
  }
  return value;
}

function validationStep(schema: AnySchema): Step {
  return (value) => {
    const checked = validate(schema, value);
    return checked instanceof Promise ? checked.then(validInput) : validInput(checked);
  };
}

function validInput(checked: Validation): unknown {
  if (!checked.ok) throw new InvalidInput(checked.issues);
  return checked.value;
}

function dependencyStep(plan: DependencyPlan): Step {
  return (value, ctx) => resolveDependencies(plan, value, ctx);
}

function guardStep(guard: NonNullable<PipelineParts["guard"]>): Step {
  return (value, ctx) => {
    const allowed = guard(value, ctx);
    if (isThenable(allowed)) {
      return Promise.resolve(allowed).then((settled) => allowedOrRefused(settled, value));
    }
    return allowedOrRefused(allowed, value);
  };
}

function allowedOrRefused(allowed: unknown, value: unknown): unknown {
  if (allowed === false) throw new ForbiddenError();
  return value;
}

function outputStep(schema: AnySchema): Step {
  return (value) =>
    isAsyncIterable(value) ? checkedStream(value, schema) : checkOutput(schema, value);
}

function checkOutput(schema: AnySchema, value: unknown): unknown {
  const checked = validate(schema, value);
  return checked instanceof Promise ? checked.then(validOutput) : validOutput(checked);
}

/**
 * A stream whose every value and return value pass the output schema (transformed by it);
 * one that fails ends the stream as a handler's result would. Stopping it stops the source.
 */
async function* checkedStream(source: AsyncIterable<unknown>, schema: AnySchema) {
  const iterator = source[Symbol.asyncIterator]();
  let done = false;
  try {
    while (true) {
      const next = await iterator.next();
      if (next.done) {
        done = true;
        return await checkOutput(schema, next.value);
      }
      yield await checkOutput(schema, next.value);
    }
  } finally {
    if (!done) await iterator.return?.();
  }
}

/**
 * A handler's result that fails its declared output schema is a fault of the server's
 * code: a plain error (the client sees `INTERNAL_ERROR`, the app's error hook the issues).
 */
function validOutput(checked: Validation): unknown {
  if (checked.ok) return checked.value;
  const problems = checked.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
  throw new TypeError(`Handler result does not match its output schema: ${problems.join("; ")}`);
}
