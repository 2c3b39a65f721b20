// The AsyncAPI 3.0 document of an app, built from its declarations: each action is a
// channel of its own (its name is the frame's `channel`) with a `receive` operation and its
// reply; each pub/sub channel has its subscribe and unsubscribe operations with their
// replies and the `send` of its data frames (and of joins and leaves with presence). Frames
// that belong to no channel (ping, errors for frames that cannot be read) are on `connection`.
import type { JsonSchema } from "@valibot/to-json-schema";
import type { ActionDeclaration, ChannelDeclaration } from "../declare/declarations.ts";
import type { AnySchema } from "../declare/validate.ts";
import { ErrorCode, MAX_REQUEST_ID_LENGTH } from "../protocol/protocol.ts";
import { jsonSchemaOf, type SchemaSide } from "./json-schema.ts";

/** Options of `app.asyncapi()`: what the document says of the API and where it is served. */
export interface AsyncApiOptions {
  /** The API's title (default `SocketAPI`). */
  title?: string | undefined;
  /** The API's version (default `1.0.0`). */
  version?: string | undefined;
  /** What the API is for, in CommonMark. */
  description?: string | undefined;
  /**
   * Where it is served, by name: `{ production: { host: "api.example.com", protocol: "wss",
   * pathname: "/ws" } }`. Served at `/asyncapi.json`, the document names the server that
   * answered.
   */
  servers?: Record<string, AsyncApiServer> | undefined;
}

/** A server of the document. */
export interface AsyncApiServer {
  /** Host and port: `api.example.com`, `127.0.0.1:8000`. */
  host: string;
  /** `ws` or `wss` (default `ws`). */
  protocol?: "ws" | "wss" | undefined;
  /** The WebSocket's path (default `/`). */
  pathname?: string | undefined;
  description?: string | undefined;
}

/** An AsyncAPI 3.0 document, as JSON. */
export interface AsyncApiDocument {
  asyncapi: "3.0.0";
  info: { title: string; version: string; description?: string };
  [key: string]: unknown;
}

/** What the builder reads of an app. */
export interface Declarations {
  readonly actions: ReadonlyMap<string, ActionDeclaration>;
  readonly channels: ReadonlyMap<string, ChannelDeclaration>;
}

type Json = Record<string, unknown>;

/** A declaration's schema as JSON Schema, its definitions kept for the document. */
type SchemaOf = (schema: AnySchema | undefined, side: SchemaSide) => JsonSchema;

const WS_BINDING = { ws: { method: "GET", bindingVersion: "0.1.0" } };

/** What may answer an action's frame besides `completed`. */
const ACTION_ERRORS = [
  ErrorCode.INVALID_PARAMS,
  ErrorCode.FORBIDDEN,
  ErrorCode.HANDLER_ERROR,
  ErrorCode.HANDLER_TIMEOUT,
  ErrorCode.INTERNAL_ERROR,
  ErrorCode.RATE_LIMITED,
];

/** What may answer a subscribe besides `subscribed`. */
const SUBSCRIBE_ERRORS = [...ACTION_ERRORS, ErrorCode.TOO_MANY_SUBSCRIPTIONS];

/** What answers a frame that cannot be read or names nothing declared. */
const FRAME_ERRORS = [
  ErrorCode.INVALID_JSON,
  ErrorCode.INVALID_MESSAGE,
  ErrorCode.UNKNOWN_TYPE,
  ErrorCode.NOT_FOUND,
  ErrorCode.MESSAGE_TOO_LARGE,
  ErrorCode.RATE_LIMITED,
];

const REQUEST_ID = { $ref: "#/components/schemas/RequestId" };

/** Builds the document of an app's declarations. */
export function buildAsyncApi(
  declarations: Declarations,
  options: AsyncApiOptions = {},
): AsyncApiDocument {
  const channels: Json = {};
  const definitions: Record<string, JsonSchema> = {};
  const schemaOf: SchemaOf = (schema, side) => jsonSchemaOf(schema, side, definitions);
  const operations: Json = {};
  const keys = new Keys();

  for (const [name, action] of declarations.actions) {
    const key = keys.take(name);
    describeAction(name, key, action, channels, operations, schemaOf);
  }
  for (const [name, channel] of declarations.channels) {
    const key = keys.take(name);
    describeChannel(name, key, channel, channels, operations, schemaOf);
  }
  describeConnection(keys.take("connection"), channels, operations);

  const info: AsyncApiDocument["info"] = {
    title: options.title ?? "SocketAPI",
    version: options.version ?? "1.0.0",
    description:
      options.description ??
      "One WebSocket carries every frame, each a JSON object in a text frame. An action's or " +
        "a channel's name is the frame's `channel`; `id` (a string or a number, chosen by the " +
        "client) is echoed on the answer.",
  };
  const document: AsyncApiDocument = { asyncapi: "3.0.0", info };
  if (options.servers && Object.keys(options.servers).length > 0) {
    document.servers = Object.fromEntries(
      Object.entries(options.servers).map(([name, server]) => [name, describeServer(server)]),
    );
  }
  document.defaultContentType = "application/json";
  document.channels = channels;
  document.operations = operations;
  document.components = {
    schemas: {
      ...definitions,
      RequestId: {
        description: `Chosen by the client, echoed on the answer: a string of at most ${MAX_REQUEST_ID_LENGTH} characters or a finite number.`,
        oneOf: [{ type: "string", maxLength: MAX_REQUEST_ID_LENGTH }, { type: "number" }],
      },
      Issue: {
        type: "object",
        description: "One validation failure: its message, and where in `data` it is.",
        properties: {
          message: { type: "string" },
          path: { type: "array", items: { oneOf: [{ type: "string" }, { type: "integer" }] } },
        },
        required: ["message", "path"],
      },
    },
  };
  return document;
}

function describeServer(server: AsyncApiServer): Json {
  const described: Json = {
    host: server.host,
    protocol: server.protocol ?? "ws",
    pathname: server.pathname ?? "/",
  };
  if (server.description) described.description = server.description;
  return described;
}

function describeAction(
  name: string,
  key: string,
  action: ActionDeclaration,
  channels: Json,
  operations: Json,
  schemaOf: SchemaOf,
): void {
  const input = schemaOf(action.input, "input");
  const output = action.output
    ? schemaOf(action.output, "output")
    : { description: "What the handler returns (no output schema is declared)." };
  const call = message(
    `${name}`,
    "Calls the action.",
    {
      type: constant("action"),
      channel: constant(name),
      data: action.input
        ? input
        : { description: "The action declares no input: `data` may be left out." },
      id: REQUEST_ID,
    },
    ["type", "channel"],
  );
  const examples = examplesOf(input);
  if (examples.length > 0) {
    call.examples = examples.map((data) => ({
      payload: { type: "action", channel: name, data, id: 1 },
    }));
  }
  channels[key] = {
    address: name,
    title: name,
    ...(action.description ? { description: action.description } : {}),
    messages: {
      call,
      completed: message(
        `${name} completed`,
        "The action finished: `data` is what it returned, left out when it returned nothing.",
        {
          type: constant("action"),
          channel: constant(name),
          status: constant("completed"),
          data: output,
          id: REQUEST_ID,
        },
        ["type", "channel", "status"],
      ),
      error: errorMessage(`${name} failed`, constant(name), ACTION_ERRORS),
    },
    bindings: WS_BINDING,
  };
  operations[key] = {
    action: "receive",
    channel: ref(`#/channels/${key}`),
    title: name,
    summary: action.description ?? `Calls ${name}.`,
    messages: [ref(`#/channels/${key}/messages/call`)],
    reply: {
      channel: ref(`#/channels/${key}`),
      messages: [
        ref(`#/channels/${key}/messages/completed`),
        ref(`#/channels/${key}/messages/error`),
      ],
    },
  };
}

function describeChannel(
  name: string,
  key: string,
  channel: ChannelDeclaration,
  channels: Json,
  operations: Json,
  schemaOf: SchemaOf,
): void {
  const template = channel.template;
  const params = schemaOf(channel.params, "input");
  const nameSchema = template.isStatic
    ? constant(name)
    : {
        type: "string",
        pattern: `^${name
          .split("/")
          .map((segment) => (/^\{\w+\}$/.test(segment) ? "[^/]+" : escapeRegExp(segment)))
          .join("/")}$`,
        description: `A concrete name of ${name}: each parameter fills its segment.`,
      };
  const data = channel.data
    ? schemaOf(channel.data, "output")
    : { description: "What the channel's handler returns (no data schema is declared)." };
  const history = channel.history !== undefined;
  const presence = channel.presence !== undefined;

  const subscribeData = subscribeDataOf(params, channel.subscribeKeys);
  const subscribeProperties: Json = {
    type: constant("subscribe"),
    channel: nameSchema,
    ...(subscribeData ? { data: subscribeData } : {}),
    id: REQUEST_ID,
  };
  if (history) {
    subscribeProperties.since = {
      type: "object",
      description: "Asks for every broadcast after this position (docs/recovery.md).",
      properties: { offset: { type: "integer", minimum: 0 }, epoch: { type: "string" } },
      required: ["offset", "epoch"],
    };
  }
  if (presence) {
    subscribeProperties.presence = {
      type: "boolean",
      description: "`true`: list the members in `subscribed`, then hear joins and leaves.",
    };
  }
  const subscribedProperties: Json = {
    type: constant("subscribed"),
    channel: nameSchema,
    id: REQUEST_ID,
  };
  if (history) {
    subscribedProperties.offset = { type: "integer", minimum: 0 };
    subscribedProperties.epoch = { type: "string" };
    subscribedProperties.recovered = {
      type: "boolean",
      description: "With `since`: whether the missed broadcasts follow.",
    };
  }
  if (presence) {
    subscribedProperties.members = {
      type: "array",
      description: "With `presence: true`: the members, at most 1,000.",
      items: {
        type: "object",
        properties: { user: { type: "string" }, info: { description: "What `presence` returns." } },
        required: ["user", "info"],
      },
    };
    subscribedProperties.count = {
      type: "integer",
      minimum: 0,
      description: "How many members there are.",
    };
  }
  const dataProperties: Json = { type: constant("data"), channel: nameSchema, data };
  if (history) {
    dataProperties.offset = { type: "integer", minimum: 1 };
    dataProperties.epoch = { type: "string" };
  }

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
  if (presence) {
    messages.join = message(
      `${name} join`,
      "A member joined (only to clients that asked for presence).",
      {
        type: constant("join"),
        channel: nameSchema,
        user: { type: "string" },
        info: { description: "What the channel's `presence` function returns for the member." },
      },
      ["type", "channel", "user", "info"],
    );
    messages.leave = message(
      `${name} leave`,
      "A member left: its last connection unsubscribed or closed.",
      {
        type: constant("leave"),
        channel: nameSchema,
        user: { type: "string" },
      },
      ["type", "channel", "user"],
    );
  }

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
  if (presence) {
    operations[`${key}.presence`] = {
      action: "send",
      channel: ref(`#/channels/${key}`),
      title: `${name} presence`,
      summary: "Joins and leaves, to the subscribers that asked for presence.",
      messages: [at("join"), at("leave")],
    };
  }
}

/** Frames that belong to no channel: ping and pong, and errors for frames that cannot be read. */
function describeConnection(key: string, channels: Json, operations: Json): void {
  channels[key] = {
    address: null,
    title: "connection",
    description: "Frames of the connection itself, not of an action or a channel.",
    messages: {
      ping: message("ping", "A liveness check.", { type: constant("ping") }, ["type"]),
      pong: message("pong", "Answers ping.", { type: constant("pong") }, ["type"]),
      frameError: errorMessage(
        "frame error",
        { type: "string", description: "The frame's `channel`, when it had one." },
        FRAME_ERRORS,
      ),
    },
    bindings: WS_BINDING,
  };
  operations[`${key}.ping`] = {
    action: "receive",
    channel: ref(`#/channels/${key}`),
    title: "ping",
    messages: [ref(`#/channels/${key}/messages/ping`)],
    reply: {
      channel: ref(`#/channels/${key}`),
      messages: [ref(`#/channels/${key}/messages/pong`)],
    },
  };
  operations[`${key}.frameError`] = {
    action: "send",
    channel: ref(`#/channels/${key}`),
    title: "frame error",
    summary:
      "A frame could not be read, or names no declared action or channel; the connection stays open.",
    messages: [ref(`#/channels/${key}/messages/frameError`)],
  };
}

/** An error frame that may answer an operation, with the codes it may carry. */
function errorMessage(title: string, channel: Json, codes: readonly string[]): Json {
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

function message(title: string, summary: string, properties: Json, required: string[]): Json {
  return {
    title,
    summary,
    payload: { type: "object", properties, required },
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

/** The examples a schema gives (valibot's `examples` or `metadata`). */
function examplesOf(schema: JsonSchema): unknown[] {
  return Array.isArray(schema.examples) ? schema.examples : [];
}

function constant(value: string): Json {
  return { type: "string", const: value };
}

function ref(to: string): Json {
  return { $ref: to };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Keys of the document's maps: a name as a key (letters, digits, `.`, `-`, `_`), never twice. */
class Keys {
  readonly #taken = new Set<string>();

  take(name: string): string {
    const base = name.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^_+|_+$/g, "") || "channel";
    let key = base;
    for (let n = 2; this.#taken.has(key) || this.#taken.has(`${key}.subscribe`); n++)
      key = `${base}_${n}`;
    this.#taken.add(key);
    return key;
  }
}
