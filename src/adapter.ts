/**
 * What an adapter needs to serve a SocketAPI app on a runtime: the socket the core talks
 * to, feeding a session its events, answering the requests of a server, the broadcast
 * endpoint, and a graceful shutdown; and what a relay over a message broker needs
 * (`BrokerRelay`). The bundled adapters (`socketapi/node`, `/bun`, `/deno`, `/hono`,
 * `/cloudflare`) and relays (`socketapi/redis`, `/nats`) are written with this entry point
 * and the public API only; a third party can write one the same way.
 *
 * @example
 * ```ts
 * import type { SocketAPI } from "socketapi";
 * import { admitUpgrade, serveWebSocket } from "socketapi/adapter";
 *
 * // A runtime that hands over WHATWG WebSockets:
 * async function accept(app: SocketAPI, request: Request, socket: WebSocket) {
 *   const admission = await admitUpgrade(app, { url: request.url, headers: request.headers });
 *   if (!admission.ok) return admission.response;
 *   serveWebSocket(app, socket, request, admission.state, admission.slot);
 * }
 * ```
 *
 * @module
 */
export {
  adminAppFor,
  answerAdmin,
  checkAdminOptions,
  closeAdmin,
  type InstanceSample,
  type SampleCollector,
  sampleForDashboard,
  startAdmin,
} from "./admin/admin-kit.ts";
export type { AdminActionEvent, AdminOptions } from "./admin/admin-options.ts";
export type { Admission, AnyApp, ConnectionSlot } from "./app.ts";
export type { UpgradeRequest } from "./context.ts";
export { bucketOf, emptyEpoch, emptySince } from "./history/empty-stream.ts";
export { DEFAULT_HISTORY_BYTES } from "./history/history.ts";
export { type KeptStream, recoveryOf, recoveryOfStream } from "./history/recovery.ts";
export { newEpoch, stampedFrame } from "./history/stamp.ts";
export {
  type BrokerLink,
  BrokerRelay,
  type BrokerRelayOptions,
  DEGRADED_MS,
  errorMessage,
  type LinkEvents,
  redactedUrl,
  STALLED_MS,
} from "./hub/broker-relay.ts";
export { CENSUS_TOPIC } from "./hub/census.ts";
export { Hub } from "./hub/hub.ts";
export type { Relay, RelayHealth, RelayStats } from "./hub/relay.ts";
export type { NativeDelivery, Subscriber } from "./hub/subscriber.ts";
export { targetedFrame } from "./hub/target.ts";
export { loadOptional } from "./optional.ts";
export {
  joinFrame,
  leaveFrame,
  MemberListing,
  PRESENCE_EVENT_MARK,
} from "./presence/presence-registry.ts";
export { PING_FRAME, PONG_FRAME } from "./protocol/protocol.ts";
export { utf8ByteLength } from "./protocol/utf8.ts";
export {
  admitUpgrade,
  hubOf,
  type OpenOptions,
  openConnection,
  reportToApp,
} from "./serve/app-internals.ts";
export {
  BROADCAST_PATH,
  type BroadcastEndpointOptions,
  handleBroadcastRequest,
  isLoopbackAddress,
} from "./serve/broadcast-endpoint.ts";
export type { Compression } from "./serve/compression.ts";
export {
  ASYNCAPI_PATH,
  type DocsOptions,
  docsOptions,
  handleDocsRequest,
} from "./serve/docs-endpoint.ts";
export {
  closeFallbackSessions,
  fallbackRouteOf,
  handleFallbackRequest,
} from "./serve/fallback/fallback-endpoint.ts";
export { KeptRequest, keepRequest } from "./serve/kept-request.ts";
export {
  broadcastOptions,
  type FetchRoute,
  isWebSocketUpgrade,
  type PlainRequest,
  type RequestRoute,
  type RoutingOptions,
  refusalOf,
  routeFetch,
  routeRequest,
  titleOf,
} from "./serve/request-router.ts";
export type { ConnectionKeeper, Session } from "./serve/session.ts";
export { closeSessions } from "./serve/shutdown.ts";
export { type MessageData, OPEN, type SocketLike } from "./serve/socket.ts";
export {
  type PeerAddress,
  peerAddressOf,
  type RuntimeUpgrader,
  registerRuntimeUpgrader,
  setUpgradeRoute,
  type UpgradeRoute,
  upgradeWhereServed,
} from "./serve/upgrade-route.ts";
export {
  runtimeUpgradeWebSocket,
  type UpgradeWebSocket,
  upgradeToWebSocket,
} from "./serve/upgrade-websocket.ts";
export { serveWebSocket } from "./serve/websocket.ts";
