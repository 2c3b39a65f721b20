// The part of a Durable Object that serves sockets: it accepts them with the Hibernation
// API, keeps each connection in its socket's attachment so that it survives eviction, and
// delivers broadcasts that arrive over RPC.
import type { AnyApp } from "../../src/adapter.ts";
import {
  type ConnectionKeeper,
  Hub,
  hubOf,
  type InstanceSample,
  isWebSocketUpgrade,
  openConnection,
  PING_FRAME,
  PONG_FRAME,
  refusalOf,
  reportToApp,
  type Session,
  sampleForDashboard,
  type UpgradeRequest,
  utf8ByteLength,
} from "../../src/adapter.ts";
import {
  CloseCode,
  type Connection,
  type DisconnectTarget,
  ErrorCode,
  SOCKETAPI_PROTOCOL,
  SocketAPIError,
} from "../../src/index.ts";
import { warnOfCompression } from "./compression.ts";
import { DirectoryRelay, type ObjectDirectory } from "./directory.ts";
import {
  type CloudflareOptions,
  DEFAULT_SHARD,
  EXPIRES_HEADER,
  protocolHeaders,
  SHARD_HEADER,
  SHARD_KEY,
  STATE_HEADER,
} from "./options.ts";
import { PRESENCE_CHECK_MS, PresenceRoster, type PresenceShare } from "./presence-roster.ts";
import { SqlHistory } from "./sql-history.ts";

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
  /** The channels with presence on which it hears joins and leaves. */
  p?: string[];
  /** When its credential expires (ms since the epoch): the object's alarm wakes it then. */
  e?: number;
  /** The subprotocol it was accepted with, when not JSON's `socketapi` (a codec's). */
  k?: string;
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

/** The part of a Durable Object that serves sockets; the exported class delegates to it. */
export class ObjectServer implements ConnectionKeeper {
  readonly #app: AnyApp;
  readonly #options: CloudflareOptions<unknown>;
  readonly #ctx: DurableObjectState;
  /** This object's connections and subscribers, and its relay to the other shards. */
  readonly #hub: Hub;
  readonly #relay: DirectoryRelay;
  readonly #sessions = new Map<WebSocket, Session<object>>();
  readonly #sockets = new WeakMap<Connection<object>, WebSocket>();
  readonly #attachments = new WeakMap<Connection<object>, Attachment>();
  readonly #saved = new WeakMap<Connection<object>, string>();
  readonly #directory: ObjectDirectory;
  #roster: PresenceRoster | undefined;
  shard: string | undefined;
  /** When this object woke (what a dashboard shows as its uptime). */
  readonly #startedAt = Date.now();

  constructor(
    app: AnyApp,
    directory: ObjectDirectory,
    options: CloudflareOptions<unknown>,
    ctx: DurableObjectState,
  ) {
    this.#app = app;
    this.#options = options;
    this.#ctx = ctx;
    this.#directory = directory;
    this.#relay = new DirectoryRelay(directory, {
      shard: () => this.shard,
      ctx,
      deliverHere: (channel, text) => this.#hub.receive(channel, text),
    });
    this.#hub = new Hub((error, info) => reportToApp(app, error, info), this.#relay);
    this.#hub.userOf = hubOf(app).userOf;
    this.#hub.telemetry = hubOf(app).telemetry;
    this.#hub.presenceLeaveDelay = app.limits.presenceLeaveDelay;
    // Channels with history keep it in the object's storage: it survives eviction. No timer
    // may keep the object awake: a channel it stops hearing loses its history at once.
    const history = hubOf(app).history;
    if (history) this.#hub.keepHistory(history.optionsOf, new SqlHistory(ctx.storage.sql), false);
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
      return refusalOf("too-many-connections");
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
    // The Worker forwards the protocol it chose alone (never the token): `socketapi`, or a
    // codec's the app speaks.
    const offered = request.headers.get("sec-websocket-protocol");
    const protocol =
      offered === SOCKETAPI_PROTOCOL || this.#app.codecs.some((codec) => codec.protocol === offered)
        ? (offered as string)
        : undefined;
    const expires = Number(request.headers.get(EXPIRES_HEADER) ?? Number.NaN);
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
    if (Number.isFinite(expires)) attachment.e = expires;
    if (protocol !== undefined && protocol !== SOCKETAPI_PROTOCOL) attachment.k = protocol;
    server.serializeAttachment(attachment);
    // The expiry frame, first (an accepted pair's socket may not say it is open yet).
    this.#open(server, attachment, protocol).greet();
    if (attachment.e !== undefined) await this.#wakeAt(attachment.e);
    if (this.#sessions.size === 1) this.#ctx.waitUntil(this.#relay.trackShard(true));
    // Whether the client may compress is the Worker's compatibility flag: an empty
    // Sec-WebSocket-Extensions here refuses nothing (cloudflare/compression.ts).
    warnOfCompression(this.#app);
    return new Response(null, {
      status: 101,
      webSocket: client,
      headers: protocolHeaders(protocol),
    });
  }

  message(ws: WebSocket, message: string | ArrayBuffer): void {
    const session = this.#sessions.get(ws) ?? this.#restore(ws);
    session.receive(message);
  }

  close(ws: WebSocket, code: number, reason: string): void {
    this.#sessions.get(ws)?.handleClose(code, reason);
    if (this.#sessions.delete(ws) && this.#sessions.size === 0) {
      this.#ctx.waitUntil(this.#relay.trackShard(false));
    }
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
  subscribing(
    session: Connection<object>,
    channel: string,
    params?: Record<string, unknown>,
  ): void {
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

  listening(session: Connection<object>, channel: string): void {
    const attachment = this.#attachments.get(session);
    if (!attachment || attachment.p?.includes(channel)) return;
    // Saved with the rest once the frame is served.
    attachment.p = [...(attachment.p ?? []), channel];
  }

  unsubscribed(session: Connection<object>, channel: string): void {
    const attachment = this.#attachments.get(session);
    if (!attachment || !(channel in attachment.c)) return;
    delete attachment.c[channel];
    if (attachment.p?.includes(channel)) {
      attachment.p = attachment.p.filter((name) => name !== channel);
      if (attachment.p.length === 0) delete attachment.p;
    }
    // A closing socket's attachment is gone with it; only an open one is rewritten.
    if (session.isOpen) this.#save(session, false);
  }

  /** A refresh moved the credential's expiry: kept in the attachment, and the alarm set for it. */
  expiryChanged(session: Connection<object>, at: number | undefined): void {
    const attachment = this.#attachments.get(session);
    // A closing socket's attachment is gone with it (an expiry already past closed it).
    if (!attachment || !session.isOpen) return;
    if (at === undefined) delete attachment.e;
    else attachment.e = at;
    this.#save(session, false);
    if (at !== undefined) this.#ctx.waitUntil(this.#wakeAt(at));
  }

  /**
   * Closes the connections whose credential expired (the alarm rang), then sets the alarm
   * for the next expiry.
   */
  async expireDue(): Promise<void> {
    const now = Date.now();
    let next: number | undefined;
    for (const session of this.#sessions.values()) {
      if (session.expireIfDue(now)) continue;
      const at = session.expiresAt;
      if (at !== undefined && (next === undefined || at < next)) next = at;
    }
    if (next !== undefined) await this.#wakeAt(next);
  }

  /** Sets the object's alarm for `at`, unless it rings earlier already. */
  async #wakeAt(at: number): Promise<void> {
    const storage = this.#ctx.storage;
    const current = await storage.getAlarm();
    if (current === null || at < current) await storage.setAlarm(at);
  }

  /** Handlers may have changed the connection's state: keep it once the frames are served. */
  idle(session: Connection<object>): void {
    this.#save(session, false);
  }

  /**
   * A broadcast that came over RPC: delivered to this object's subscribers. A shard the
   * directory still lists for a channel it has no subscribers of (its sockets went away
   * without a close event: an eviction, a deploy) takes itself off the list.
   */
  deliverRemote(channel: string, frame: string): number {
    if (!this.#hub.index.has(channel)) this.#ctx.waitUntil(this.#relay.track(channel, false));
    return this.#hub.receive(channel, frame);
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

  /** Closes this shard's connections that `target` names (a disconnect from elsewhere). */
  disconnectHere(target: DisconnectTarget, code: number, reason: string): number {
    // A shard still listed with no connection left (evicted without close events) says so.
    if (this.#sessions.size === 0) this.#ctx.waitUntil(this.#relay.trackShard(false));
    return this.#hub.disconnectHere(target, { code, reason });
  }

  /** This object as a Worker's dashboard sees it: asked once a second while a page watches. */
  adminSample(): Promise<InstanceSample> {
    return sampleForDashboard(this.#app, this.#hub, this.shard ?? "(unnamed)", this.#startedAt);
  }

  /** The directory's record of the shards that hold connections. */
  async trackShard(shard: string, present: boolean): Promise<void> {
    const key = `shard:${shard}`;
    if (present) await this.#ctx.storage.put(key, 1);
    else await this.#ctx.storage.delete(key);
  }

  async connectedShards(): Promise<string[]> {
    const listed = await this.#ctx.storage.list({ prefix: "shard:" });
    return [...listed.keys()].map((key) => key.slice("shard:".length));
  }

  async shardsOf(channel: string): Promise<string[]> {
    return (await this.#ctx.storage.get<string[]>(`channel:${channel}`)) ?? [];
  }

  /** How many connections here are subscribed to `channel`. */
  subscribersHere(channel: string): number {
    return this.#hub.subscriberCount(channel);
  }

  /** What this shard holds of `channel`'s members, for its roster. */
  presenceHere(channel: string): PresenceShare {
    return this.#hub.presence.registry.entries(channel);
  }

  /** The members of a channel across shards, when this object is the channel's roster. */
  get roster(): PresenceRoster {
    this.#roster ??= new PresenceRoster(
      this.#ctx,
      this.#directory,
      this.#options.presenceCheckInterval ?? PRESENCE_CHECK_MS,
    );
    return this.#roster;
  }

  /** Rebuilds a connection from its socket's attachment: after a wake, or on first use. */
  #restore(ws: WebSocket): Session<object> {
    const attachment = ws.deserializeAttachment() as Attachment | null;
    if (!attachment) {
      // Not one of ours (accepted by user code): close it rather than serve it half.
      ws.close(CloseCode.internalError, "Unknown connection");
      throw new Error("socketapi/cloudflare: a socket without attachment");
    }
    const session = this.#open(ws, attachment);
    session.restoreSubscriptions(Object.keys(attachment.c), attachment.p);
    return session;
  }

  /**
   * Opens a connection's session from its attachment; `protocol` only when it is new (a
   * client that speaks `socketapi` is told its expiry once; one restored speaks the codec
   * its attachment names). Its expiry keeps no timer: the object's alarm wakes it
   * (`expireDue`), and one already past closes it now.
   */
  #open(ws: WebSocket, attachment: Attachment, protocol?: string): Session<object> {
    const request: UpgradeRequest = { url: attachment.u, headers: new Headers(attachment.h) };
    const session = openConnection(this.#app, ws, request, attachment.s, {
      id: attachment.i,
      hub: this.#hub,
      expiresAt: attachment.e,
      expiryTimer: false,
      protocol: protocol ?? attachment.k,
      greeted: protocol === undefined,
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
  #save(session: Connection<object>, forSubscription: boolean): void {
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
