/**
 * Serves a SocketAPI app on Cloudflare Workers. A WebSocket cannot outlive the request that
 * opened it in a Worker, so connections live in a Durable Object, accepted with the
 * WebSocket Hibernation API: the object may be evicted from memory while its sockets stay
 * open, and wakes with every connection's subscriptions and state, kept in the socket's
 * attachment.
 *
 * @example
 * ```ts
 * import { cloudflare } from "socketapi/cloudflare";
 * import app from "./main.ts";
 *
 * const { worker, SocketAPIObject } = cloudflare(app);
 * export default worker;
 * export { SocketAPIObject }; // bound as SOCKETAPI in wrangler.toml
 * ```
 *
 * @module
 */
import { DurableObject, env as workerEnv } from "cloudflare:workers";
import {
  admitUpgrade,
  type BroadcastEndpointOptions,
  broadcastOptions,
  type ConnectionKeeper,
  Hub,
  handleBroadcastRequest,
  hubOf,
  isLoopbackAddress,
  isWebSocketUpgrade,
  openConnection,
  PING_FRAME,
  PONG_FRAME,
  type Relay,
  refusalOf,
  reportToApp,
  routeRequest,
  type Session,
  setUpgradeRoute,
  type UpgradeRequest,
  utf8ByteLength,
} from "../src/adapter.ts";
import { ErrorCode, type SocketAPI, SocketAPIError } from "../src/index.ts";

// biome-ignore lint/suspicious/noExplicitAny: any app can be served.
type AnyApp = SocketAPI<any, any, any>;

/** What this runtime can and cannot do, for the cross-runtime suite and the docs. */
export { workersCapabilities as capabilities } from "./capabilities.ts";

/** The name of the object when the app is not sharded. */
export const DEFAULT_SHARD = "default";
/** The name of the object that knows which shards have subscribers of which channel. */
export const DIRECTORY_SHARD = "__socketapi_directory__";

const SHARD_HEADER = "x-socketapi-shard";
const STATE_HEADER = "x-socketapi-state";
const SHARD_KEY = "socketapi:shard";

/** Options of {@link cloudflare}. */
export interface CloudflareOptions<Env = Cloudflare.Env> {
  /** The Durable Object binding's name in `wrangler.toml`; default `SOCKETAPI`. */
  binding?: string | undefined;
  /**
   * Which object a connection lives in, from its upgrade request: one per room from the
   * URL, one per tenant. Default: a single object for the whole app. With a shard function
   * a broadcast reaches every shard that has subscribers of its channel.
   */
  shard?: ((request: Request, env: Env) => string | Promise<string>) | undefined;
  /**
   * The shards a broadcast on a concrete channel goes to, when the channel says it (e.g.
   * `rooms/42` lives in shard `42`). Return `undefined` to ask the shard directory.
   */
  channelShards?: ((channel: string) => string[] | undefined) | undefined;
  /** Only upgrades to this path are served (e.g. `/ws`); default: every path. */
  path?: string | undefined;
  /**
   * The broadcast endpoint (`POST /_broadcast`); `false` turns it off. The caller's
   * address is Cloudflare's `CF-Connecting-IP`; from outside, set a `token`.
   */
  broadcast?: BroadcastEndpointOptions | false | undefined;
  /**
   * Upgrade headers kept with each connection, so that `ctx.request.headers` has them after
   * the object wakes from hibernation (default none).
   */
  keepHeaders?: string[] | undefined;
  /**
   * Query parameters of the upgrade URL kept with each connection (default none):
   * `ctx.request.url` is the URL without its query but for these. A token in the query
   * (read by `onConnect`, in the Worker) is neither kept nor counted against the
   * attachment's size.
   */
  keepQuery?: string[] | undefined;
  /** The largest attachment per socket, in bytes (default 2048, Cloudflare's documented floor). */
  maxAttachmentBytes?: number | undefined;
  /** Answers requests that are neither upgrades nor the broadcast endpoint (default 426). */
  fetch?:
    | ((request: Request, env: Env, ctx: ExecutionContext) => Response | Promise<Response>)
    | undefined;
}

/** What a connection keeps in its socket's attachment, so that it survives hibernation. */
interface Attachment {
  /** The connection's id. */
  i: string;
  /** The upgrade request's URL, without its query but for `keepQuery`. */
  u: string;
  /** The kept upgrade headers. */
  h: [string, string][];
  /** The connection's state. */
  s: object;
  /** Subscriptions: concrete channel name to the subscribe-time parameters the client sent. */
  c: Record<string, Record<string, unknown> | 0>;
}

/** The RPC methods every object has: delivery, and the shard directory's two. */
export interface ObjectRpc {
  deliver(channel: string, frame: string): Promise<number>;
  trackChannel(channel: string, shard: string, present: boolean): Promise<void>;
  shardsOf(channel: string): Promise<string[]>;
}

/** The URL a connection keeps: without fragment, and without query but for the names given. */
function keptUrl(url: string, keepQuery: readonly string[]): string {
  const parsed = new URL(url);
  const kept = new URLSearchParams();
  for (const name of keepQuery)
    for (const value of parsed.searchParams.getAll(name)) kept.append(name, value);
  parsed.search = kept.toString();
  parsed.hash = "";
  return parsed.href;
}

/** The deployment does not match what the adapter was told: said as it is, to the log and the caller. */
export class ConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigurationError";
  }
}

/** Where a Worker's objects are, and which of them have subscribers of a channel. */
class ObjectDirectory {
  readonly #app: AnyApp;
  readonly #options: CloudflareOptions<unknown>;

  constructor(app: AnyApp, options: CloudflareOptions<unknown>) {
    this.#app = app;
    this.#options = options;
  }

  get sharded(): boolean {
    return this.#options.shard !== undefined;
  }

  stub(shard: string): ObjectRpc {
    const binding = this.#options.binding ?? "SOCKETAPI";
    const namespace = (workerEnv as unknown as Record<string, DurableObjectNamespace | undefined>)[
      binding
    ];
    if (!namespace) {
      throw new ConfigurationError(
        `socketapi/cloudflare: no Durable Object binding named ${binding}: name the binding of ` +
          "the SocketAPIObject class in wrangler.toml, or pass its name as `binding`.",
      );
    }
    return namespace.get(namespace.idFromName(shard)) as unknown as ObjectRpc;
  }

  /** The shards a broadcast on `channel` goes to. */
  async shardsOf(channel: string): Promise<string[]> {
    const direct = this.#options.channelShards?.(channel);
    if (direct) return direct;
    if (!this.sharded) return [DEFAULT_SHARD];
    return this.stub(DIRECTORY_SHARD).shardsOf(channel);
  }

  report(error: unknown, channel: string): void {
    reportToApp(this.#app, error, { channel, phase: "broadcast" });
  }
}

/**
 * The relay between a Worker's objects: an object joins a channel in the shard directory
 * when it gets its first subscriber of it, and leaves with the last (one object's updates
 * reach the directory in order); a broadcast goes over RPC to every other shard that has
 * subscribers. The Worker itself (which holds no sockets) publishes through one too.
 */
class DirectoryRelay implements Relay {
  readonly #directory: ObjectDirectory;
  /** The object this relay serves (`undefined` for the Worker): its shard and its context. */
  readonly #object: { shard(): string | undefined; ctx: DurableObjectState } | undefined;
  #updates: Promise<void> = Promise.resolve();

  constructor(
    directory: ObjectDirectory,
    object?: { shard(): string | undefined; ctx: DurableObjectState },
  ) {
    this.#directory = directory;
    this.#object = object;
  }

  // Frames from other shards arrive over RPC (`deliver`), straight into the object's index.
  open(): void {}

  join(channel: string): Promise<void> {
    return this.track(channel, true);
  }

  leave(channel: string): void {
    this.#object?.ctx.waitUntil(this.track(channel, false));
  }

  /** Tells the directory that this shard has (or no longer has) subscribers of `channel`. */
  track(channel: string, present: boolean): Promise<void> {
    const shard = this.#object?.shard();
    if (!this.#directory.sharded || shard === undefined) return Promise.resolve();
    const update = this.#updates.then(() =>
      this.#directory.stub(DIRECTORY_SHARD).trackChannel(channel, shard, present),
    );
    // The chain goes on after a failed update; the caller sees the failure.
    this.#updates = update.catch(() => {});
    return update;
  }

  /**
   * Delivers over RPC to every other shard with subscribers of `channel`. A shard that
   * fails (evicted mid-call, overloaded) costs its own subscribers this broadcast, not
   * everyone's: the others are counted, the failure is reported.
   */
  async publish(channel: string, frame: string): Promise<number> {
    const here = this.#object?.shard();
    const shards = (await this.#directory.shardsOf(channel)).filter((shard) => shard !== here);
    const outcomes = await Promise.allSettled(
      shards.map((shard) => this.#directory.stub(shard).deliver(channel, frame)),
    );
    let delivered = 0;
    for (const outcome of outcomes) {
      if (outcome.status === "fulfilled") delivered += outcome.value;
      else this.#directory.report(outcome.reason, channel);
    }
    return delivered;
  }

  async close(): Promise<void> {}
}

/** The part of a Durable Object that serves sockets; the exported class delegates to it. */
class ObjectServer implements ConnectionKeeper {
  readonly #app: AnyApp;
  readonly #options: CloudflareOptions<unknown>;
  readonly #ctx: DurableObjectState;
  /** This object's connections and subscribers, and its relay to the other shards. */
  readonly #hub: Hub;
  readonly #relay: DirectoryRelay;
  readonly #sessions = new Map<WebSocket, Session<object>>();
  readonly #sockets = new WeakMap<Session<object>, WebSocket>();
  readonly #attachments = new WeakMap<Session<object>, Attachment>();
  readonly #saved = new WeakMap<Session<object>, string>();
  shard: string | undefined;

  constructor(
    app: AnyApp,
    directory: ObjectDirectory,
    options: CloudflareOptions<unknown>,
    ctx: DurableObjectState,
  ) {
    this.#app = app;
    this.#options = options;
    this.#ctx = ctx;
    this.#relay = new DirectoryRelay(directory, { shard: () => this.shard, ctx });
    this.#hub = new Hub((error, info) => reportToApp(app, error, info), this.#relay);
    // Answered by the runtime without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    for (const ws of ctx.getWebSockets()) this.#restore(ws);
    void ctx.blockConcurrencyWhile(async () => {
      this.shard = (await ctx.storage.get<string>(SHARD_KEY)) ?? ctx.id.name;
    });
  }

  /** Accepts a WebSocket forwarded by the Worker, after `onConnect` admitted it there. */
  async accept(request: Request): Promise<Response> {
    if (!isWebSocketUpgrade(request.headers.get("upgrade"))) return refusalOf("upgrade-required");
    // The Worker cannot see an object's connections: the object counts its own.
    if (this.#sessions.size >= this.#app.limits.maxConnections) {
      return new Response("Too many connections", { status: 503 });
    }
    const shard = request.headers.get(SHARD_HEADER) ?? DEFAULT_SHARD;
    if (this.shard !== shard) {
      this.shard = shard;
      await this.#ctx.storage.put(SHARD_KEY, shard);
    }
    const state = JSON.parse(request.headers.get(STATE_HEADER) ?? "{}") as object;
    const kept = (this.#options.keepHeaders ?? []).flatMap((name): [string, string][] => {
      const value = request.headers.get(name);
      return value === null ? [] : [[name.toLowerCase(), value]];
    });
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.#ctx.acceptWebSocket(server);
    const attachment: Attachment = {
      i: crypto.randomUUID(),
      u: keptUrl(request.url, this.#options.keepQuery ?? []),
      h: kept,
      s: state,
      c: {},
    };
    server.serializeAttachment(attachment);
    this.#open(server, attachment);
    // An empty Sec-WebSocket-Extensions refuses permessage-deflate: a 30 KB compressed frame
    // can inflate to 30 MiB inside the object's 128 MB. workerd documents the empty value as
    // "no compression" (compatibility-date.capnp, `webSocketCompression`).
    return new Response(null, {
      status: 101,
      webSocket: client,
      headers: { "sec-websocket-extensions": "" },
    });
  }

  message(ws: WebSocket, message: string | ArrayBuffer): void {
    const session = this.#sessions.get(ws) ?? this.#restore(ws);
    if (typeof message === "string") session.receiveText(message);
    else session.receiveBinary();
  }

  close(ws: WebSocket, code: number, reason: string): void {
    this.#sessions.get(ws)?.handleClose(code, reason);
    this.#sessions.delete(ws);
    // The Hibernation API needs the close handshake completed by the object; 1005, 1006
    // and 1015 may not be sent.
    const reply = code === 1005 || code === 1006 || code === 1015 ? 1000 : code;
    try {
      ws.close(reply, reason);
    } catch {
      // Already closed.
    }
  }

  /** A subscription is about to be added: kept in the attachment, or refused if it does not fit. */
  subscribing(session: Session<object>, channel: string, params?: Record<string, unknown>): void {
    const attachment = this.#attachments.get(session);
    if (!attachment) return;
    attachment.c[channel] = params ?? 0;
    try {
      this.#save(session, true);
    } catch (error) {
      delete attachment.c[channel];
      throw error;
    }
  }

  unsubscribed(session: Session<object>, channel: string): void {
    const attachment = this.#attachments.get(session);
    if (!attachment || !(channel in attachment.c)) return;
    delete attachment.c[channel];
    // A closing socket's attachment is gone with it; only an open one is rewritten.
    if (session.isOpen) this.#save(session, false);
  }

  /** Handlers may have changed the connection's state: keep it once the frames are served. */
  idle(session: Session<object>): void {
    this.#save(session, false);
  }

  /**
   * A broadcast that came over RPC: delivered to this object's subscribers. A shard the
   * directory still lists for a channel it has no subscribers of (its sockets went away
   * without a close event: an eviction, a deploy) takes itself off the list.
   */
  deliverRemote(channel: string, frame: string): number {
    if (!this.#hub.index.has(channel)) this.#ctx.waitUntil(this.#relay.track(channel, false));
    return this.#hub.index.deliver(channel, frame);
  }

  /** The directory's record of which shards have subscribers of a channel. */
  async trackChannel(channel: string, shard: string, present: boolean): Promise<void> {
    const key = `channel:${channel}`;
    const shards = new Set((await this.#ctx.storage.get<string[]>(key)) ?? []);
    if (present) shards.add(shard);
    else shards.delete(shard);
    if (shards.size > 0) await this.#ctx.storage.put(key, [...shards]);
    else await this.#ctx.storage.delete(key);
  }

  async shardsOf(channel: string): Promise<string[]> {
    return (await this.#ctx.storage.get<string[]>(`channel:${channel}`)) ?? [];
  }

  /** Rebuilds a connection from its socket's attachment: after a wake, or on first use. */
  #restore(ws: WebSocket): Session<object> {
    const attachment = ws.deserializeAttachment() as Attachment | null;
    if (!attachment) {
      // Not one of ours (accepted by user code): close it rather than serve it half.
      ws.close(1011, "Unknown connection");
      throw new Error("socketapi/cloudflare: a socket without attachment");
    }
    const session = this.#open(ws, attachment);
    session.restoreSubscriptions(Object.keys(attachment.c));
    return session;
  }

  #open(ws: WebSocket, attachment: Attachment): Session<object> {
    const request: UpgradeRequest = { url: attachment.u, headers: new Headers(attachment.h) };
    const session = openConnection(this.#app, ws, request, attachment.s, {
      id: attachment.i,
      hub: this.#hub,
    });
    this.#sessions.set(ws, session);
    this.#sockets.set(session, ws);
    this.#attachments.set(session, attachment);
    this.#saved.set(session, JSON.stringify(attachment));
    session.keeper = this;
    return session;
  }

  /**
   * Writes a connection's attachment when it changed. Over the size limit, a new
   * subscription is refused with TOO_MANY_SUBSCRIPTIONS; a state that grew too big is not
   * kept, and the app's error hook hears of it.
   */
  #save(session: Session<object>, forSubscription: boolean): void {
    const attachment = this.#attachments.get(session);
    const ws = this.#sockets.get(session);
    if (!attachment || !ws) return;
    attachment.s = session.state;
    const text = JSON.stringify(attachment);
    if (text === this.#saved.get(session)) return;
    const limit = this.#options.maxAttachmentBytes ?? 2048;
    const size = utf8ByteLength(text);
    if (size > limit) {
      const parts =
        `subscriptions ${utf8ByteLength(JSON.stringify(attachment.c))} bytes, ` +
        `state ${utf8ByteLength(JSON.stringify(attachment.s))}, ` +
        `request ${utf8ByteLength(attachment.u) + utf8ByteLength(JSON.stringify(attachment.h))}`;
      if (forSubscription) {
        throw new SocketAPIError(
          `This connection cannot keep another subscription: what it saves to survive ` +
            `hibernation would take ${size} bytes (${parts}), over the ${limit}-byte limit of ` +
            `a socket attachment (maxAttachmentBytes). Unsubscribe from a channel first.`,
          { code: ErrorCode.TOO_MANY_SUBSCRIPTIONS },
        );
      }
      reportToApp(
        this.#app,
        new Error(
          `Connection state is not kept across hibernation: it would take ${size} bytes ` +
            `(${parts}), over the ${limit}-byte limit of a socket attachment (maxAttachmentBytes).`,
        ),
        { connection: session, phase: "persist" },
      );
      return;
    }
    ws.serializeAttachment(attachment);
    this.#saved.set(session, text);
  }
}

/** The Durable Object that holds connections: the runtime calls its handlers, Workers its RPC methods. */
export interface SocketAPIDurableObject<Env> extends DurableObject<Env>, ObjectRpc {
  fetch(request: Request): Promise<Response>;
  webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void;
  webSocketClose(ws: WebSocket, code: number, reason: string): void;
  webSocketError(ws: WebSocket): void;
}

/** What {@link cloudflare} returns: the Worker's handler and the Durable Object class. */
export interface CloudflareDeployment<Env> {
  /** `export default worker`: routes upgrades to objects, serves the broadcast endpoint. */
  worker: ExportedHandler<Env> & {
    fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response>;
  };
  /** Export it under the class name bound in `wrangler.toml`. */
  SocketAPIObject: new (
    ctx: DurableObjectState,
    env: Env,
  ) => SocketAPIDurableObject<Env>;
}

/**
 * The Worker and the Durable Object class that serve `app` on Cloudflare.
 *
 * @example
 * ```ts
 * // One object per room: the connection's shard comes from the URL, and a broadcast on
 * // rooms/42 goes straight to shard 42.
 * const { worker, SocketAPIObject } = cloudflare(app, {
 *   shard: (request) => new URL(request.url).searchParams.get("room") ?? "lobby",
 *   channelShards: (channel) => (channel.startsWith("rooms/") ? [channel.slice(6)] : undefined),
 * });
 * export default worker;
 * export { SocketAPIObject };
 * ```
 */
export function cloudflare<Env = Cloudflare.Env>(
  app: AnyApp,
  options: CloudflareOptions<Env> = {},
): CloudflareDeployment<Env> {
  const directory = new ObjectDirectory(app, options as CloudflareOptions<unknown>);
  // The Worker holds no sockets: its broadcasts go to the objects, over the directory.
  try {
    hubOf(app).useRelay(new DirectoryRelay(directory));
  } catch {
    throw new ConfigurationError(
      "socketapi/cloudflare: Workers carry broadcasts between objects themselves: remove the " +
        "app's `relay` option.",
    );
  }

  const routeUpgrade = async (request: Request, env: Env): Promise<Response> => {
    const admission = await admitUpgrade(app, { url: request.url, headers: request.headers });
    if (!admission.ok) return admission.response;
    // The Worker holds no connections: the object counts its own against the limit.
    admission.slot.release();
    const shard = (await options.shard?.(request, env)) ?? DEFAULT_SHARD;
    const headers = new Headers(request.headers);
    headers.set(SHARD_HEADER, shard);
    headers.set(STATE_HEADER, JSON.stringify(admission.state ?? {}));
    const stub = directory.stub(shard) as unknown as Fetcher;
    // The hop to the object negotiates no compression either.
    headers.delete("sec-websocket-extensions");
    const response = await stub.fetch(new Request(request.url, { method: "GET", headers }));
    if (!response.webSocket) return response;
    return new Response(null, {
      status: 101,
      webSocket: response.webSocket,
      headers: { "sec-websocket-extensions": "" },
    });
  };
  setUpgradeRoute(app, (request, env) => routeUpgrade(request, env as Env));

  const worker: CloudflareDeployment<Env>["worker"] = {
    async fetch(request, env, ctx) {
      try {
        return await route(request, env, ctx);
      } catch (error) {
        reportToApp(app, error, { phase: "connect" });
        // A configuration mistake is said plainly; anything else stays internal.
        const body =
          error instanceof ConfigurationError ? `${error.message}\n` : "Internal Server Error\n";
        return new Response(body, { status: 500 });
      }
    },
  };

  // By the one table; what the table refuses goes to the Worker's own routes first.
  async function route(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const path = new URL(request.url).pathname;
    const upgrade = isWebSocketUpgrade(request.headers.get("upgrade"));
    const where = routeRequest(path, upgrade, options, false);
    if (where === "broadcast") {
      const fromLoopback = isLoopbackAddress(request.headers.get("cf-connecting-ip") ?? undefined);
      return handleBroadcastRequest(app, request, {
        fromLoopback,
        options: broadcastOptions(options) ?? {},
      });
    }
    if (where === "upgrade") return routeUpgrade(request, env);
    if (options.fetch) return options.fetch(request, env, ctx);
    return refusalOf(where);
  }

  class SocketAPIObject extends DurableObject<Env> implements SocketAPIDurableObject<Env> {
    readonly #server: ObjectServer;

    constructor(ctx: DurableObjectState, env: Env) {
      super(ctx, env);
      this.#server = new ObjectServer(app, directory, options as CloudflareOptions<unknown>, ctx);
    }

    override fetch(request: Request): Promise<Response> {
      return this.#server.accept(request);
    }

    override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
      this.#server.message(ws, message);
    }

    override webSocketClose(ws: WebSocket, code: number, reason: string): void {
      this.#server.close(ws, code, reason);
    }

    override webSocketError(ws: WebSocket): void {
      this.#server.close(ws, 1011, "WebSocket error");
    }

    async deliver(channel: string, frame: string): Promise<number> {
      return this.#server.deliverRemote(channel, frame);
    }

    async trackChannel(channel: string, shard: string, present: boolean): Promise<void> {
      await this.#server.trackChannel(channel, shard, present);
    }

    async shardsOf(channel: string): Promise<string[]> {
      return this.#server.shardsOf(channel);
    }
  }

  return { worker, SocketAPIObject };
}
