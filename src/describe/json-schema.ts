// A declaration's valibot schema as JSON Schema (draft-07, which AsyncAPI's schemas extend),
// through valibot's own converter. What JSON Schema cannot say (a custom check, a transform,
// an async check) is said in the schema's description, never left out without a word; a
// dependency that takes nothing from the client is not part of what the client sends.
import { type JsonSchema, toJsonSchema } from "@valibot/to-json-schema";
import { takesNoInput } from "../declare/dependency.ts";
import type { AnySchema } from "../declare/validate.ts";

/** Which side of a schema is described: what the client sends, or what the server sends. */
export type SchemaSide = "input" | "output";

/** Valibot actions a JSON value looks the same after (whitespace and case are still strings). */
const SHAPE_KEEPING = new Set(["trim", "trim_start", "trim_end", "to_lower_case", "to_upper_case"]);

interface ValibotNode {
  readonly type?: string;
  readonly kind?: string;
  readonly async?: boolean;
  readonly message?: unknown;
  readonly pipe?: readonly ValibotNode[];
  readonly entries?: Record<string, unknown>;
}

/**
 * The JSON Schema of `schema` on `side`; `{}` (any JSON value) without one. Definitions the
 * converter makes (recursive schemas) go to `definitions`, which the document keeps under
 * `components.schemas`, and references point there.
 */
export function jsonSchemaOf(
  schema: AnySchema | undefined,
  side: SchemaSide,
  definitions: Record<string, JsonSchema> = {},
): JsonSchema {
  if (schema === undefined) return {};
  // The converter shows a pipe as its first schema: what the rest of it does is found first.
  const pipes = new Map<unknown, string[]>();
  findPipes(schema as ValibotNode, side, pipes, new Set());
  const converted = toJsonSchema(schema as never, {
    target: "draft-07",
    typeMode: side,
    errorMode: "ignore",
    overrideSchema: ({ valibotSchema, jsonSchema, errors }) => {
      const node = valibotSchema as ValibotNode;
      let result = jsonSchema;
      if (node.entries) result = withoutContextOnly(result, node.entries);
      const notes = [...(errors ?? []).map(plainError), ...(pipes.get(valibotSchema) ?? [])];
      if (node.async) notes.push("Checked asynchronously on the server.");
      return notes.length > 0 ? noted(result, notes) : result;
    },
    overrideAction: ({ valibotAction, jsonSchema, errors }) => {
      const action = valibotAction as ValibotNode;
      // A transformation is said once, for its whole pipe (findPipes).
      if (!errors || action.kind === "transformation") return undefined;
      const said = typeof action.message === "string" ? `: ${action.message}` : "";
      return noted(jsonSchema, [`Also checked on the server (${action.type}${said}).`]);
    },
  });
  const {
    $schema: _draft,
    definitions: made,
    $defs,
    ...rest
  } = converted as JsonSchema & {
    $defs?: Record<string, JsonSchema>;
  };
  const found = { ...(made as Record<string, JsonSchema> | undefined), ...$defs };
  if (Object.keys(found).length === 0) return rest;
  // Each conversion numbers its definitions from 0: each gets a name of its own in the document.
  const renamed = new Map<string, string>();
  for (const name of Object.keys(found)) {
    renamed.set(name, `Schema${Object.keys(definitions).length + renamed.size + 1}`);
  }
  const pointed = (part: JsonSchema) =>
    JSON.parse(
      JSON.stringify(part).replace(
        /"\$ref":"#\/(?:definitions|\$defs)\/([^"]*)"/g,
        (whole, name: string) =>
          renamed.has(name) ? `"$ref":"#/components/schemas/${renamed.get(name)}"` : whole,
      ),
    ) as JsonSchema;
  for (const [name, definition] of Object.entries(found)) {
    definitions[renamed.get(name) as string] = pointed(definition);
  }
  return pointed(rest);
}

/** The converter's own words for what it could not convert, as a sentence. */
function plainError(error: string): string {
  const text = error.trim();
  return text.endsWith(".") ? text : `${text}.`;
}

/** `schema` with `notes` added to its description. */
function noted(schema: JsonSchema, notes: string[]): JsonSchema {
  const said = new Set(notes);
  const description = [schema.description, ...said].filter(Boolean).join(" ");
  return { ...schema, description };
}

/** An object's JSON Schema without the entries a client does not send (context dependencies). */
function withoutContextOnly(schema: JsonSchema, entries: Record<string, unknown>): JsonSchema {
  const hidden = Object.keys(entries).filter((key) => takesNoInput(entries[key]));
  if (hidden.length === 0 || typeof schema.properties !== "object") return schema;
  const properties = { ...schema.properties };
  for (const key of hidden) delete properties[key];
  const required = schema.required?.filter((key) => !hidden.includes(key));
  const trimmed: JsonSchema = { ...schema, properties };
  if (required && required.length > 0) trimmed.required = required;
  else delete trimmed.required;
  return trimmed;
}

/**
 * Every pipe under `node` that transforms, by the schema of it the converter shows, with
 * what it does that the JSON Schema does not show.
 */
function findPipes(
  node: ValibotNode | undefined,
  side: SchemaSide,
  found: Map<unknown, string[]>,
  seen: Set<unknown>,
): void {
  if (!node || typeof node !== "object" || seen.has(node)) return;
  seen.add(node);
  const pipe = node.pipe;
  if (pipe) {
    const transforms = pipe
      .filter((step) => step.kind === "transformation" && !SHAPE_KEEPING.has(step.type ?? ""))
      .map((step) => step.type);
    // The converter shows the first schema of a pipe for input, the last for output.
    const schemas = pipe.filter((step) => step.kind === "schema");
    const shown = side === "input" ? schemas[0] : schemas[schemas.length - 1];
    if (transforms.length > 0 && shown) {
      const names = [...new Set(transforms)].join(", ");
      found.set(shown, [
        side === "input"
          ? `The server transforms it (${names}) and may check it further; what this schema shows is what the client sends.`
          : `The server transforms it (${names}) before sending; its shape after that is not described.`,
      ]);
    }
    for (const step of pipe) findPipes(step, side, found, seen);
  }
  const inner = node as {
    entries?: Record<string, ValibotNode>;
    item?: ValibotNode;
    items?: ValibotNode[];
    wrapped?: ValibotNode;
    options?: ValibotNode[];
    rest?: ValibotNode;
    key?: ValibotNode;
    value?: ValibotNode;
  };
  for (const child of Object.values(inner.entries ?? {})) findPipes(child, side, found, seen);
  for (const child of [inner.item, inner.wrapped, inner.rest, inner.key, inner.value]) {
    findPipes(child, side, found, seen);
  }
  const lists = [...(inner.items ?? []), ...(Array.isArray(inner.options) ? inner.options : [])];
  for (const child of lists) findPipes(child, side, found, seen);
}
