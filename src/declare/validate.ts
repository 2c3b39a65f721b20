import * as v from "valibot";
import { toWireIssues } from "../protocol/issues.ts";
import type { WireIssue } from "../protocol/protocol.ts";

/** Any valibot schema, sync or async. */
export type AnySchema = v.GenericSchema | v.GenericSchemaAsync;

/** The outcome of validating untrusted data against a schema. */
export type Validation = { ok: true; value: unknown } | { ok: false; issues: WireIssue[] };

function outcome(result: v.SafeParseResult<AnySchema>): Validation {
  return result.success
    ? { ok: true, value: result.output }
    : { ok: false, issues: toWireIssues(result.issues) };
}

/**
 * Validates `value` against `schema`. Sync schemas answer synchronously, so that a frame
 * whose handler is sync is served without waiting for a microtask.
 */
export function validate(schema: AnySchema, value: unknown): Validation | Promise<Validation> {
  if (schema.async) return v.safeParseAsync(schema, value).then(outcome);
  // What `v.safeParse` does, without the result object it would allocate on every frame.
  const dataset = schema["~run"]({ value }, v.getGlobalConfig());
  return dataset.issues
    ? { ok: false, issues: toWireIssues(dataset.issues) }
    : { ok: true, value: dataset.value };
}

/**
 * Validates a handler's result against its declared output schema and returns the
 * schema's output. A mismatch is a fault of the server's code, so it throws a plain error
 * (the client sees `INTERNAL_ERROR`; the app's error hook sees the issues).
 */
export async function parseOutput(schema: AnySchema, value: unknown): Promise<unknown> {
  const result = await validate(schema, value);
  if (result.ok) return result.value;
  const problems = result.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
  throw new TypeError(`Handler result does not match its output schema: ${problems.join("; ")}`);
}
