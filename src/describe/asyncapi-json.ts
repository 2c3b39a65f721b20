// Pieces of the AsyncAPI document that every part of it writes the same way.
import type { JsonSchema } from "@valibot/to-json-schema";
import type { AnySchema } from "../declare/validate.ts";
import { ErrorCode } from "../protocol/protocol.ts";
import type { SchemaSide } from "./json-schema.ts";

/** A piece of the document, as JSON. */
export type Json = Record<string, unknown>;

/** The binding of every channel: one WebSocket, opened with a GET. */
export const WS_BINDING: Json = { ws: { method: "GET", bindingVersion: "0.1.0" } };

/** What may answer an action's frame besides `completed`. */
export const ACTION_ERRORS: readonly string[] = [
  ErrorCode.INVALID_PARAMS,
  ErrorCode.FORBIDDEN,
  ErrorCode.HANDLER_ERROR,
  ErrorCode.HANDLER_TIMEOUT,
  ErrorCode.INTERNAL_ERROR,
  ErrorCode.RATE_LIMITED,
];

/** A declaration's schema as JSON Schema, its definitions kept for the document. */
export type SchemaOf = (schema: AnySchema | undefined, side: SchemaSide) => JsonSchema;

/** A request's `id`, as the document's shared schema. */
export const REQUEST_ID: Json = { $ref: "#/components/schemas/RequestId" };

/** A message of the document: a frame, as an object schema. */
export function message(
  title: string,
  summary: string,
  properties: Json,
  required: string[],
): Json {
  return {
    title,
    summary,
    payload: { type: "object", properties, required },
  };
}

/** An error frame that may answer an operation, with the codes it may carry. */
export function errorMessage(title: string, channel: Json, codes: readonly string[]): Json {
  return message(
    title,
    "The frame could not be served; the connection stays open.",
    {
      type: constant("error"),
      code: { type: "string", enum: [...codes] },
      message: { type: "string" },
      channel,
      id: REQUEST_ID,
      issues: { type: "array", items: { $ref: "#/components/schemas/Issue" } },
    },
    ["type", "code", "message"],
  );
}

/** A string that is always `value`. */
export function constant(value: string): Json {
  return { type: "string", const: value };
}

/** A reference to another part of the document. */
export function ref(to: string): Json {
  return { $ref: to };
}
