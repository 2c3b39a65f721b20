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

import { DurableObject } from "cloudflare:workers";
import type { AnyApp } from "../src/adapter.ts";
import {
  type AdminOptions,
  adminAppFor,
  admitUpgrade,
  answerAdmin,
  broadcastOptions,
  checkAdminOptions,
  docsOptions,
  handleBroadcastRequest,
  handleDocsRequest,
  hubOf,
  type InstanceSample,
  isLoopbackAddress,
  isWebSocketUpgrade,
  refusalOf,
  reportToApp,
  routeRequest,
  type SampleCollector,
  serveWebSocket,
  setUpgradeRoute,
  startAdmin,
  titleOf,
} from "../src/adapter.ts";
import { CloseCode, type DisconnectTarget, type PresenceCount } from "../src/index.ts";
import { warnOfCompression } from "./cloudflare/compression.ts";
import { DirectoryRelay, ObjectDirectory } from "./cloudflare/directory.ts";
import { ObjectServer } from "./cloudflare/object-server.ts";
import {
  type CloudflareOptions,
  ConfigurationError,
  DEFAULT_SHARD,
  EXPIRES_HEADER,
  type ObjectRpc,
  protocolHeaders,
  SHARD_HEADER,
  STATE_HEADER,
} from "./cloudflare/options.ts";
import type { PresenceShare, ShareUpdate } from "./cloudflare/presence-roster.ts";

/** What this runtime can and cannot do, for the cross-runtime suite and the docs. */
export { workersCapabilities as capabilities } from "./capabilities.ts";

// Sockets and upgrades are in cloudflare/object-server.ts, the shard directory in
// cloudflare/directory.ts.

// --- Options ---

export {
  type CloudflareOptions,
  ConfigurationError,
  type ObjectRpc,
} from "./cloudflare/options.ts";

/** The Durable Object that holds connections: the runtime calls its handlers, Workers its RPC methods. */
export interface SocketAPIDurableObject<Env> extends DurableObject<Env>, ObjectRpc {
  fetch(request: Request): Promise<Response>;
  webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void;
  webSocketClose(ws: WebSocket, code: number, reason: string): void;
  webSocketError(ws: WebSocket): void;
  alarm(): Promise<void>;
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

// --- Serving ---

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
    // Nor history: the objects keep it, each in its storage, as broadcasts reach them.
    const history = hubOf(app).history;
    if (history) hubOf(app).keepHistory(history.optionsOf, null, false);
  } catch {
    throw new ConfigurationError(
      "socketapi/cloudflare: Workers carry broadcasts between objects themselves: remove the " +
        "app's `relay` option.",
    );
  }

  const routeUpgrade = async (request: Request, env: Env): Promise<Response> => {
    warnOfCompression(app);
    const admission = await admitUpgrade(app, { url: request.url, headers: request.headers });
    if (!admission.ok) return admission.response;
    // The Worker holds no connections: the object counts its own against the limit.
    admission.slot.release();
    const shard = (await options.shard?.(request, env)) ?? DEFAULT_SHARD;
    const headers = new Headers(request.headers);
    headers.set(SHARD_HEADER, shard);
    headers.set(STATE_HEADER, JSON.stringify(admission.state ?? {}));
    // Only what onConnect said reaches the object: a client's own header is dropped.
    headers.delete(EXPIRES_HEADER);
    if (admission.expiresAt !== undefined) headers.set(EXPIRES_HEADER, String(admission.expiresAt));
    // The token stays in the Worker: the object hears only that the client speaks socketapi.
    if (admission.protocol !== undefined) headers.set("sec-websocket-protocol", admission.protocol);
    const stub = directory.stub(shard) as unknown as Fetcher;
    // The hop to the object negotiates no compression. What the client gets is up to the
    // Worker's `no_web_socket_compression` flag (cloudflare/compression.ts).
    headers.delete("sec-websocket-extensions");
    const response = await stub.fetch(new Request(request.url, { method: "GET", headers }));
    if (!response.webSocket) return response;
    return new Response(null, {
      status: 101,
      webSocket: response.webSocket,
      headers: protocolHeaders(admission.protocol),
    });
  };
  setUpgradeRoute(app, (request, env) => routeUpgrade(request, env as Env));

  // The dashboard: its page and its socket in the Worker, which asks every object that
  // holds connections for its sample once a second while a page watches.
  const collect: SampleCollector = async () => {
    const shards = (await directory.connectedShards()).slice(0, MAX_SAMPLED_SHARDS);
    const samples = await Promise.all(
      shards.map((shard) => withinSampleTime(directory.stub(shard).adminSample())),
    );
    return samples.filter((sample): sample is InstanceSample => sample !== undefined);
  };
  // A wrong token throws here; the dashboard is made with the first request to it (a
  // Worker's global scope may not make random ids), with the collector.
  checkAdminOptions(options.admin);
  let adminMade: Promise<void> | undefined;
  const adminReady = (): Promise<void> =>
    (adminMade ??= startAdmin(app, options.admin as AdminOptions, collect));
  const acceptAdmin = async (request: Request): Promise<Response> => {
    await adminReady();
    const admin = await adminAppFor(app, options.admin as AdminOptions, collect);
    const kept = { url: request.url, headers: request.headers };
    const admission = await admitUpgrade(admin, kept);
    if (!admission.ok) return admission.response;
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    server.accept();
    serveWebSocket(admin, server, admission.request, admission.state, admission.slot);
    return new Response(null, {
      status: 101,
      webSocket: client,
      headers: protocolHeaders(admission.protocol),
    });
  };

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
    if (where === "docs" || where === "asyncapi") {
      return handleDocsRequest(app, where, request, docsOptions(options.docs) ?? {}, options.path);
    }
    if (where === "upgrade") return routeUpgrade(request, env);
    if (options.fetch) return options.fetch(request, env, ctx);
    // Workers have no fallback transport (capabilities.ts says why): never routed here.
    if (where === "fallback-stream" || where === "fallback-post") {
      return refusalOf("upgrade-required");
    }
    if (where === "admin") {
      await adminReady();
      return answerAdmin(app, request, options.admin as AdminOptions, titleOf(options));
    }
    if (where === "admin-upgrade") return acceptAdmin(request);
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
      this.#server.close(ws, CloseCode.internalError, "WebSocket error");
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

    async subscribersHere(channel: string): Promise<number> {
      return this.#server.subscribersHere(channel);
    }

    async presenceHere(channel: string): Promise<PresenceShare> {
      return this.#server.presenceHere(channel);
    }

    async presenceUpdate(update: ShareUpdate): Promise<boolean> {
      return this.#server.roster.update(update);
    }

    async presenceMembers(
      _channel: string,
      limit: number,
      maxBytes?: number,
    ): Promise<{ json: string; count: number }> {
      return this.#server.roster.members(limit, maxBytes);
    }

    async presenceCount(_channel: string): Promise<PresenceCount> {
      return this.#server.roster.count();
    }

    async disconnectHere(target: DisconnectTarget, code: number, reason: string): Promise<number> {
      return this.#server.disconnectHere(target, code, reason);
    }

    async trackShard(shard: string, present: boolean): Promise<void> {
      await this.#server.trackShard(shard, present);
    }

    async adminSample(): Promise<InstanceSample> {
      return this.#server.adminSample();
    }

    async connectedShards(): Promise<string[]> {
      return this.#server.connectedShards();
    }

    /**
     * A presence roster's check of its shards, and the expiry of connections whose
     * credential expired (a subclass with an alarm of its own calls `super.alarm()`).
     */
    override async alarm(): Promise<void> {
      await this.#server.roster.check();
      await this.#server.expireDue();
    }
  }

  return { worker, SocketAPIObject };
}

/** At most this many objects are asked for a dashboard's view. */
const MAX_SAMPLED_SHARDS = 256;

/** An object's sample, or `undefined` when it did not answer within 900 ms (the next view). */
function withinSampleTime(sample: Promise<InstanceSample>): Promise<InstanceSample | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), 900);
  });
  return Promise.race([sample.catch(() => undefined), late]).finally(() => {
    if (timer !== undefined) clearTimeout(timer);
  });
}
