// A pub/sub channel in the AsyncAPI document: its subscribe and unsubscribe operations with
// their replies, and the `send` of its data frames. History and presence add their own
// fields and frames (asyncapi-history.ts, asyncapi-presence.ts), only where declared.
import type { JsonSchema } from "@valibot/to-json-schema";
import type { ChannelDeclaration } from "../declare/declarations.ts";
import { ErrorCode } from "../protocol/protocol.ts";
import { describeHistoryFields } from "./asyncapi-history.ts";
import {
  ACTION_ERRORS,
  constant,
  errorMessage,
  type Json,
  message,
  REQUEST_ID,
  ref,
  type SchemaOf,
  WS_BINDING,
} from "./asyncapi-json.ts";
import { describePresenceFields, describePresenceFrames } from "./asyncapi-presence.ts";

/** What may answer a subscribe besides `subscribed`. */
const SUBSCRIBE_ERRORS = [...ACTION_ERRORS, ErrorCode.TOO_MANY_SUBSCRIPTIONS];

/** Adds channel `name` (under `key`) to the document's channels and operations. */
export function describeChannel(
  name: string,
  key: string,
  channel: ChannelDeclaration,
  channels: Json,
  operations: Json,
  schemaOf: SchemaOf,
): void {
  const template = channel.template;
  const params = schemaOf(channel.params, "input");
  const nameSchema = nameSchemaOf(name, template.isStatic);
  const data = channel.data
    ? schemaOf(channel.data, "output")
    : { description: "What the channel's handler returns (no data schema is declared)." };
  const presence = channel.presence !== undefined;

  const subscribeData = subscribeDataOf(params, channel.subscribeKeys);
  const subscribeProperties: Json = {
    type: constant("subscribe"),
    channel: nameSchema,
    ...(subscribeData ? { data: subscribeData } : {}),
    id: REQUEST_ID,
  };
  const subscribedProperties: Json = {
    type: constant("subscribed"),
    channel: nameSchema,
    id: REQUEST_ID,
  };
  const dataProperties: Json = { type: constant("data"), channel: nameSchema, data };
  if (channel.history !== undefined) {
    describeHistoryFields(subscribeProperties, subscribedProperties, dataProperties);
  }
  if (presence) describePresenceFields(subscribeProperties, subscribedProperties);

  const messages: Json = {
    subscribe: message(`subscribe ${name}`, "Subscribes to the channel.", subscribeProperties, [
      "type",
      "channel",
    ]),
    subscribed: message(`subscribed ${name}`, "The subscription is active.", subscribedProperties, [
      "type",
      "channel",
    ]),
    subscribeError: errorMessage(`subscribe ${name} failed`, nameSchema, SUBSCRIBE_ERRORS),
    unsubscribe: message(
      `unsubscribe ${name}`,
      "Stops receiving the channel.",
      {
        type: constant("unsubscribe"),
        channel: nameSchema,
        id: REQUEST_ID,
      },
      ["type", "channel"],
    ),
    unsubscribed: message(
      `unsubscribed ${name}`,
      "Answers every unsubscribe.",
      {
        type: constant("unsubscribed"),
        channel: nameSchema,
        id: REQUEST_ID,
      },
      ["type", "channel"],
    ),
    data: message(
      `${name} data`,
      channel.initialData
        ? "A broadcast, or the channel's initial data right after `subscribed`."
        : "A broadcast on the channel.",
      dataProperties,
      ["type", "channel", "data"],
    ),
  };
  const described: Json = { address: name, title: name };
  if (channel.description) described.description = channel.description;
  if (!template.isStatic) described.parameters = parametersOf(template.params, params);
  described.messages = messages;
  described.bindings = WS_BINDING;
  channels[key] = described;

  const at = (message: string) => ref(`#/channels/${key}/messages/${message}`);
  operations[`${key}.subscribe`] = {
    action: "receive",
    channel: ref(`#/channels/${key}`),
    title: `subscribe ${name}`,
    summary: channel.description ?? `Subscribes to ${name}.`,
    messages: [at("subscribe")],
    reply: {
      channel: ref(`#/channels/${key}`),
      messages: [
        at("subscribed"),
        at("subscribeError"),
        ...(channel.initialData ? [at("data")] : []),
      ],
    },
  };
  operations[`${key}.unsubscribe`] = {
    action: "receive",
    channel: ref(`#/channels/${key}`),
    title: `unsubscribe ${name}`,
    messages: [at("unsubscribe")],
    reply: { channel: ref(`#/channels/${key}`), messages: [at("unsubscribed")] },
  };
  operations[`${key}.data`] = {
    action: "send",
    channel: ref(`#/channels/${key}`),
    title: `${name} data`,
    summary: `Broadcasts on ${name}, to its subscribers.`,
    messages: [at("data")],
  };
  if (presence) describePresenceFrames(name, key, nameSchema, messages, operations);
}

/** A concrete name of the channel: the name itself, or a pattern its parameters fill. */
function nameSchemaOf(name: string, isStatic: boolean): Json {
  if (isStatic) return constant(name);
  return {
    type: "string",
    pattern: `^${name
      .split("/")
      .map((segment) => (/^\{\w+\}$/.test(segment) ? "[^/]+" : escapeRegExp(segment)))
      .join("/")}$`,
    description: `A concrete name of ${name}: each parameter fills its segment.`,
  };
}

/** The parameters of a templated name, from the params schema's entries. */
function parametersOf(names: readonly string[], params: JsonSchema): Json {
  const properties = (params.properties ?? {}) as Record<string, JsonSchema>;
  return Object.fromEntries(
    names.map((name) => {
      const schema = properties[name] ?? {};
      const parameter: Json = {};
      if (schema.description) parameter.description = schema.description;
      if (Array.isArray(schema.enum)) parameter.enum = schema.enum.map(String);
      if (schema.default !== undefined) parameter.default = String(schema.default);
      if (Array.isArray(schema.examples)) parameter.examples = schema.examples.map(String);
      return [name, parameter];
    }),
  );
}

/** The part of the params a client may set on subscribe, as an object schema; none: `undefined`. */
function subscribeDataOf(params: JsonSchema, keys: readonly string[]): JsonSchema | undefined {
  if (keys.length === 0) return undefined;
  const properties = (params.properties ?? {}) as Record<string, JsonSchema>;
  const required = (params.required ?? []).filter((key) => keys.includes(key));
  return {
    type: "object",
    description: "The subscribe-time parameters: the others take their defaults.",
    properties: Object.fromEntries(keys.map((key) => [key, properties[key] ?? {}])),
    ...(required.length > 0 ? { required } : {}),
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
