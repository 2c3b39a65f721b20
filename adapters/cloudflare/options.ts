// What the Worker, its objects and the shard directory share: names, headers, the options
// and the objects' RPC. A leaf: it imports nothing of the adapter, which imports it.
import type { InstanceSample, RoutingOptions } from "../../src/adapter.ts";
import type { DisconnectTarget, PresenceCount } from "../../src/index.ts";
import type { PresenceShare, ShareUpdate } from "./presence-roster.ts";

/** The name of the object when the app is not sharded. */
export const DEFAULT_SHARD = "default";
/** The name of the object that knows which shards have subscribers of which channel. */
export const DIRECTORY_SHARD = "__socketapi_directory__";

/** The header the Worker names the connection's shard in, on its way to the object. */
export const SHARD_HEADER = "x-socketapi-shard";
/** The header the Worker passes the state `onConnect` made in. */
export const STATE_HEADER = "x-socketapi-state";
/** The header the Worker passes the credential's expiry in (ms since the epoch). */
export const EXPIRES_HEADER = "x-socketapi-expires";
/** The headers of a 101 that accepted `protocol` (`socketapi`), or none. */
export function protocolHeaders(protocol: string | undefined): Record<string, string> {
  return protocol === undefined ? {} : { "Sec-WebSocket-Protocol": protocol };
}
/** Where an object keeps the name of the shard it is. */
export const SHARD_KEY = "socketapi:shard";

/**
 * Options of `cloudflare(app, options)`: the kit's `path`, `broadcast` (the caller's address
 * is Cloudflare's `CF-Connecting-IP`; from outside, set a `token`) and `docs` (served by the
 * Worker), and the Workers' own.
 */
export interface CloudflareOptions<Env = Cloudflare.Env> extends RoutingOptions {
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
  /**
   * With a shard function, how often (ms) each channel's presence roster asks the shards
   * what members they hold, so that the members of a shard that lost its sockets without a
   * close event (a deploy, a reset) leave within this bound (default 30,000).
   */
  presenceCheckInterval?: number | undefined;
  /** The largest attachment per socket, in bytes (default 2048, Cloudflare's documented floor). */
  maxAttachmentBytes?: number | undefined;
  /** Answers requests that are neither upgrades nor the broadcast endpoint (default 426). */
  fetch?:
    | ((request: Request, env: Env, ctx: ExecutionContext) => Response | Promise<Response>)
    | undefined;
}

/**
 * The RPC methods every object has: delivery, the shard directory's two, a shard's count of
 * a channel's subscribers and its share of a channel's presence, and a presence roster's three.
 */
export interface ObjectRpc {
  deliver(channel: string, frame: string): Promise<number>;
  trackChannel(channel: string, shard: string, present: boolean): Promise<void>;
  shardsOf(channel: string): Promise<string[]>;
  subscribersHere(channel: string): Promise<number>;
  presenceHere(channel: string): Promise<PresenceShare>;
  presenceUpdate(update: ShareUpdate): Promise<boolean>;
  presenceMembers(
    channel: string,
    limit: number,
    maxBytes?: number,
  ): Promise<{ json: string; count: number }>;
  presenceCount(channel: string): Promise<PresenceCount>;
  /** Closes this shard's connections that `target` names; how many it closed. */
  disconnectHere(target: DisconnectTarget, code: number, reason: string): Promise<number>;
  /** The directory's record of which shards hold connections. */
  trackShard(shard: string, present: boolean): Promise<void>;
  connectedShards(): Promise<string[]>;
  /** This shard's sample for a dashboard (the Worker's, which asks every second while watched). */
  adminSample(): Promise<InstanceSample>;
}

/** The deployment does not match what the adapter was told: said as it is, to the log and the caller. */
export class ConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigurationError";
  }
}
