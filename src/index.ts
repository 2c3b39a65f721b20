/**
 * SocketAPI: a WebSocket API framework. Actions (request/response) and channels
 * (pub/sub) declared like routes, validated with valibot, multiplexed over one WebSocket.
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { SocketAPI } from "socketapi";
 *
 * const app = new SocketAPI()
 *   .action("add_numbers", { input: v.object({ a: v.number(), b: v.number() }) },
 *     ({ a, b }) => a + b);
 * export default app;
 * ```
 *
 * @module
 */

export type { AdminActionEvent, AdminOptions } from "./admin/admin-options.ts";
export {
  DEFAULT_MAX_BUFFERED_BYTES,
  DEFAULT_MAX_MESSAGE_BYTES,
  type DisconnectInfo,
  SocketAPI,
  type SocketAPIOptions,
} from "./app.ts";
export type {
  ActionContext,
  AppView,
  BroadcastContext,
  ChannelContext,
  Connection,
  ConnectionState,
  Context,
  ErrorInfo,
  SubscribeContext,
  UpgradeRequest,
} from "./context.ts";
export type {
  ActionType,
  ActionTypes,
  ChannelType,
  ChannelTypes,
  SubscribeInput,
} from "./declare/api-types.ts";
export type { ChannelHandle, ChannelHandles } from "./declare/channel-handle.ts";
export type { ConcreteName, TemplateParams } from "./declare/channel-template.ts";
export type { ActionOptions, ChannelOptions, Guard } from "./declare/declarations.ts";
export { type ContextOnlyMarker, type DependencySchema, depends } from "./declare/dependency.ts";
export {
  type ActionHandler,
  type ChannelHandler,
  type IncludeOptions,
  Router,
  type RouterOptions,
} from "./declare/router.ts";
export { type SubscribeParam, subscribeParam } from "./declare/subscribe-param.ts";
export type {
  AsyncApiDocument,
  AsyncApiOptions,
  AsyncApiServer,
} from "./describe/asyncapi.ts";
export {
  ForbiddenError,
  HandlerTimeoutError,
  InvalidChannelParamsError,
  RequestCancelledError,
  SocketAPIError,
  type SocketAPIErrorOptions,
  UnauthorizedError,
} from "./errors.ts";
export type {
  HistoryOptions,
  HistoryStore,
  Latest,
  LocalHistoryStore,
  Recovery,
  SharedHistoryStore,
  StreamPosition,
} from "./history/history.ts";
export { MemoryHistory, type MemoryHistoryOptions } from "./history/memory-history.ts";
export type { DisconnectOptions, DisconnectTarget } from "./hub/disconnect.ts";
export type { Relay, RelayHealth, RelayStats } from "./hub/relay.ts";
export type { TelemetryOptions } from "./observe/telemetry.ts";
export type { PresenceCount, SharedPresenceStore } from "./presence/presence-registry.ts";
export type { Codec } from "./protocol/codec.ts";
export {
  type ActionCompletedFrame,
  type ActionFrame,
  type CancelFrame,
  type ChunkFrame,
  type ClientFrame,
  CloseCode,
  type DataFrame,
  ErrorCode,
  type ErrorFrame,
  ErrorMessage,
  type ExpiryFrame,
  type JoinFrame,
  type LeaveFrame,
  MAX_TOKEN_BYTES,
  PING_FRAME,
  type PingFrame,
  PONG_FRAME,
  type PongFrame,
  type RefreshedFrame,
  type RefreshFrame,
  type RequestId,
  type ServerFrame,
  SOCKETAPI_PROTOCOL,
  type SubscribedFrame,
  type SubscribeFrame,
  TOKEN_PROTOCOL_PREFIX,
  type UnsubscribedFrame,
  type UnsubscribeFrame,
  type WireIssue,
} from "./protocol/protocol.ts";
export { BROADCAST_PATH, type BroadcastEndpointOptions } from "./serve/broadcast-endpoint.ts";
export type { Compression, CompressionOptions } from "./serve/compression.ts";
export type { Credential, RefreshedCredential, TokenSource } from "./serve/credential.ts";
export type { DocsOptions } from "./serve/docs-endpoint.ts";
export type { ConnectRate, LimitOptions, Limits } from "./serve/limits.ts";
