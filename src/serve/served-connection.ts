// What serving a frame needs of its connection, and of the app: the narrow views the
// serving modules (dispatch, answers, subscriptions, handler contexts) are typed against,
// instead of the whole Session. A leaf: it imports no serving module, only types.
import type { AppView, Connection, ErrorInfo } from "../context.ts";
import type { ChannelTemplate } from "../declare/channel-template.ts";
import type { ActionDeclaration, ChannelDeclaration } from "../declare/declarations.ts";
import type { Hub } from "../hub/hub.ts";
import type { Subscriber } from "../hub/subscriber.ts";
import type { Telemetry } from "../observe/telemetry.ts";
import type { QueuedFrame } from "./intake.ts";
import type { Limits } from "./limits.ts";
import type { RefreshHook, RefreshingConnection } from "./refresh.ts";
import type { RunningRequests } from "./running-requests.ts";

/** A channel found for a concrete name: its declaration and the parameters in the name. */
export interface ChannelMatch {
  readonly declaration: ChannelDeclaration;
  readonly template: ChannelTemplate;
  readonly nameParams: Record<string, string>;
}

/** What a connection needs from its app. */
export interface SessionHost {
  readonly limits: Limits;
  findAction(name: string): ActionDeclaration | undefined;
  findChannel(concreteName: string): ChannelMatch | undefined;
  reportError(error: unknown, info: ErrorInfo): void;
  /** Serves one frame the intake let through (dispatch.ts): a promise while it waits. */
  serveFrame(connection: ServedConnection, frame: QueuedFrame): Promise<void> | undefined;
  sessionClosed(connection: ServedConnection, code: number, reason: string): void;
  /** The app's metrics and spans (no-ops without an OpenTelemetry SDK). */
  readonly telemetry: Telemetry;
  /** The app's `onRefresh`: without it, a `refresh` frame is the unknown frame it was. */
  readonly onRefresh: RefreshHook | undefined;
}

/** What answering a frame needs: the app, whether the connection is gone, and sending. */
export interface AnsweringConnection extends Connection<object> {
  readonly host: SessionHost;
  readonly closed: boolean;
  /** Sends an answer (a serialized frame), in the order frames were taken. */
  answer(text: string): void;
}

/** What serving a streaming action, or cancelling a request, needs of its connection. */
export interface StreamingConnection extends AnsweringConnection {
  /** Its requests that may be cancelled, and how many streams it has open. */
  readonly running: RunningRequests;
  /** How many bytes its socket has not sent yet; `undefined` where the runtime cannot tell. */
  readonly bufferedAmount: number | undefined;
}

/** What a handler's context needs of its connection. */
export interface HandlerConnection extends Connection<object> {
  /** Aborted when the connection closes. */
  readonly signal: AbortSignal;
  /** The app as this connection's place sees it (`ctx.app`). */
  readonly app: AppView<object>;
  /** The channel handles a declaration sees, broadcasting from this connection's place. */
  channelsFor<T extends object>(handles: T): T;
}

/**
 * What an adapter that persists connections (a Durable Object's socket attachments) is
 * told, so that a connection survives the object's eviction.
 */
export interface ConnectionKeeper {
  /**
   * A subscription is about to be added, with the parameters the client sent: throw a
   * `SocketAPIError` to refuse it (it would not fit).
   */
  subscribing(
    connection: Connection<object>,
    channel: string,
    params?: Record<string, unknown>,
  ): void;
  /** A subscription was removed. */
  unsubscribed(connection: Connection<object>, channel: string): void;
  /** Every frame taken has been served: handlers may have changed the state. */
  idle(connection: Connection<object>): void;
  /** The connection asked to hear joins and leaves on a channel with presence. */
  listening?(connection: Connection<object>, channel: string): void;
  /**
   * Its credential's expiry was set or moved (ms since the epoch; `undefined`: none), for an
   * adapter that keeps it across hibernation and wakes for it (an alarm).
   */
  expiryChanged?(connection: Connection<object>, at: number | undefined): void;
}

/** What serving a subscribe or an unsubscribe needs of its connection. */
export interface SubscribingConnection extends StreamingConnection, HandlerConnection, Subscriber {
  /** The place that holds it: its subscribers, relay, history and presence. */
  readonly hub: Hub;
  readonly limits: Limits;
  readonly keeper: ConnectionKeeper | undefined;
  /** Subscribes under way, counted against `maxSubscriptions`. */
  subscribesUnderWay: number;
  readonly subscriptionCount: number;
  holds(channel: string): boolean;
  hold(channel: string): void;
  release(channel: string): boolean;
  enterPresence(channel: string, info: string, silently?: boolean): void | Promise<void>;
  leavePresence(channel: string): void;
  listenToPresence(channel: string): void;
  presenceMember(channel: string): string;
  /** Cuts it off as a slow consumer (1013), as when what waits to be sent passes its limit. */
  cutOffSlow(): void;
}

/** A connection as the serving modules see it: all of the above. */
export type ServedConnection = SubscribingConnection & RefreshingConnection;
