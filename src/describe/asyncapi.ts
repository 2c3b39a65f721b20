// The AsyncAPI 3.0 document of an app, built from its declarations: each action is a
// channel of its own (its name is the frame's `channel`) with a `receive` operation and its
// reply; each pub/sub channel has its subscribe and unsubscribe operations with their
// replies and the `send` of its data frames (and of joins and leaves with presence). Frames
// that belong to no channel (ping, errors for frames that cannot be read) are on `connection`.
import type { JsonSchema } from "@valibot/to-json-schema";
import type { ActionDeclaration, ChannelDeclaration } from "../declare/declarations.ts";
import { ErrorCode, MAX_REQUEST_ID_LENGTH } from "../protocol/protocol.ts";
import { describeChannel } from "./asyncapi-channel.ts";
import { describeCodecs } from "./asyncapi-codecs.ts";
import { describeCredentials, EXPIRY_CLOSE } from "./asyncapi-credentials.ts";
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
import { jsonSchemaOf } from "./json-schema.ts";

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
  /** Whether the app takes `refresh` frames (it has `onRefresh`). */
  readonly refreshes?: boolean | undefined;
  /** The binary codecs it speaks besides JSON (its `codecs`). */
  readonly codecs?: readonly { readonly protocol: string; readonly name: string }[] | undefined;
}

/** What answers a frame that cannot be read or names nothing declared. */
const FRAME_ERRORS = [
  ErrorCode.INVALID_JSON,
  ErrorCode.INVALID_MESSAGE,
  ErrorCode.UNKNOWN_TYPE,
  ErrorCode.NOT_FOUND,
  ErrorCode.MESSAGE_TOO_LARGE,
  ErrorCode.RATE_LIMITED,
];

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
  describeConnection(
    keys.take("connection"),
    channels,
    operations,
    declarations.refreshes ?? false,
  );

  const info: AsyncApiDocument["info"] = {
    title: options.title ?? "SocketAPI",
    version: options.version ?? "1.0.0",
    description:
      options.description ??
      "One WebSocket carries every frame, each a JSON object in a text frame. An action's or " +
        "a channel's name is the frame's `channel`; `id` (a string or a number, chosen by the " +
        "client) is echoed on the answer.",
  };
  if (declarations.codecs?.length) describeCodecs(declarations.codecs, channels, info);
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
      error: errorMessage(`${name} failed`, constant(name), [
        ...ACTION_ERRORS,
        ErrorCode.CANCELLED,
        ...(action.streams ? [ErrorCode.TOO_MANY_STREAMS] : []),
      ]),
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
  if (action.streams) describeStream(name, key, output, channels, operations);
}

/**
 * What a streaming action adds: its `chunk` frames before `completed`, and the `cancel` a
 * client may send (docs/protocol.md, "Streams and cancellation").
 */
function describeStream(
  name: string,
  key: string,
  output: unknown,
  channels: Json,
  operations: Json,
): void {
  const messages = (channels[key] as { messages: Json }).messages;
  messages.chunk = message(
    `${name} chunk`,
    "A value the handler yielded, before `completed`; as many as it yields, in order.",
    { type: constant("chunk"), channel: constant(name), data: output, id: REQUEST_ID },
    ["type", "channel"],
  );
  messages.cancel = message(
    `cancel ${name}`,
    "Stops the request `id` while it runs: it ends with the error `CANCELLED`.",
    { type: constant("cancel"), channel: constant(name), id: REQUEST_ID },
    ["type", "channel", "id"],
  );
  const operation = operations[key] as { reply: { messages: Json[] } };
  operation.reply.messages.unshift(ref(`#/channels/${key}/messages/chunk`));
  operations[`${key}.cancel`] = {
    action: "receive",
    channel: ref(`#/channels/${key}`),
    title: `cancel ${name}`,
    summary: `Cancels a running ${name}.`,
    messages: [ref(`#/channels/${key}/messages/cancel`)],
  };
}

/** Frames that belong to no channel: ping and pong, and errors for frames that cannot be read. */
function describeConnection(
  key: string,
  channels: Json,
  operations: Json,
  refreshes: boolean,
): void {
  const messages: Json = {
    ping: message("ping", "A liveness check.", { type: constant("ping") }, ["type"]),
    pong: message("pong", "Answers ping.", { type: constant("pong") }, ["type"]),
    frameError: errorMessage(
      "frame error",
      { type: "string", description: "The frame's `channel`, when it had one." },
      FRAME_ERRORS,
    ),
  };
  channels[key] = {
    address: null,
    title: "connection",
    description: `Frames of the connection itself, not of an action or a channel.${EXPIRY_CLOSE}`,
    messages,
    bindings: WS_BINDING,
  };
  describeCredentials(key, messages, operations, refreshes);
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

/** The examples a schema gives (valibot's `examples` or `metadata`). */
function examplesOf(schema: JsonSchema): unknown[] {
  return Array.isArray(schema.examples) ? schema.examples : [];
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
