/**
 * The SocketAPI client: typed end to end from the server's app, with request ids,
 * timeouts, reconnection with backoff, resubscription and a heartbeat. No dependencies; it
 * runs on browsers, Bun, Deno and Node 22+, and on Node 20 with `ws`.
 *
 * @example
 * ```ts
 * import { createClient } from "socketapi/client";
 * import type app from "./main.ts";
 *
 * const client = createClient<typeof app>("ws://127.0.0.1:8000/");
 * const sum = await client.action("add_numbers", { a: 5, b: 3 });
 * ```
 *
 * @module
 */
export type { Codec } from "../protocol/codec.ts";
export type { ReconnectOptions } from "./backoff.ts";
export { reconnectDelay } from "./backoff.ts";
export { createClient, SocketAPIClient } from "./client.ts";
export { ClientErrorCode, SocketAPIClientError } from "./client-error.ts";
export type {
  ClientOptions,
  ClientSocket,
  ConnectionStatus,
  Unsubscribe,
  WebSocketConstructor,
} from "./client-options.ts";
export type {
  ActionsOf,
  CallArgs,
  ChannelFor,
  ChannelName,
  ChannelsOf,
  DataInfo,
  InputArgs,
  Jsonify,
  Listener,
  Member,
  PresenceOf,
  Received,
  ReceivedChunk,
  RequestOptions,
  SubscribeArgs,
  SubscriptionHandlers,
  SubscriptionListener,
} from "./client-types.ts";
export type { ActionStream } from "./stream-reader.ts";
