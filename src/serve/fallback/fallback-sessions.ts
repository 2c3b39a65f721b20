// The fallback transport's sessions of one app on one instance: a GET opens one (the same
// admission as an upgrade, then Server-Sent Events), a POST feeds it the client's frames.
// Without sticky sessions a POST may land on another instance: its id names the instance
// that holds it, and the POST travels there over the relay (a topic of that instance's
// own), so that no load balancer affinity is needed.

import type { SocketAPI } from "../../app.ts";
import { SOCKETAPI_PROTOCOL } from "../../protocol/protocol.ts";
import { randomId } from "../../random-id.ts";
import { internalsOf } from "../app-internals.ts";
import { readBounded } from "../read-bounded.ts";
import type { Session } from "../session.ts";
import { OrderedPosts } from "./ordered-posts.ts";
import { SseSocket } from "./sse-socket.ts";

/** The relay topics of the instances' fallback sessions: this, `/`, the instance. */
export const FALLBACK_TOPIC = "//fallback";

/** The headers of the stream: no caching, no buffering by a proxy (nginx honours the last). */
const STREAM_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-store",
  "x-accel-buffering": "no",
};

function text(status: number, body: string): Response {
  return new Response(`${body}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
  });
}

/** One open session: its socket and the order of its POSTs. */
interface Held {
  readonly session: Session<object>;
  readonly socket: SseSocket;
  readonly posts: OrderedPosts;
}

/** A POST forwarded by another instance: the session, the sequence number, the body. */
interface Forwarded {
  s: string;
  q: number;
  b: string;
}

/** The fallback sessions of one app here. */
export class FallbackSessions {
  /** This instance's part of every session id it hands out. */
  readonly instance: string = randomId(9);
  // biome-ignore lint/suspicious/noExplicitAny: any app can be served.
  readonly #app: SocketAPI<any, any, any>;
  readonly #held = new Map<string, Held>();
  #listening: Promise<void> | undefined;

  // biome-ignore lint/suspicious/noExplicitAny: any app can be served.
  constructor(app: SocketAPI<any, any, any>) {
    this.#app = app;
  }

  /** How many sessions it holds. */
  get size(): number {
    return this.#held.size;
  }

  /**
   * Opens a session for a GET: the upgrade's admission (origin, limits, `onConnect` with
   * the request's token), then a stream whose first event names the session.
   */
  async open(request: Request): Promise<Response> {
    const internals = internalsOf(this.#app);
    const admission = await internals.admit({ url: request.url, headers: request.headers });
    if (!admission.ok) return admission.response;
    const { limits } = this.#app;
    const socket = new SseSocket();
    const id = `${this.instance}.${randomId(16)}`;
    // Before any frame (the expiry's, at once): the client's POSTs name this.
    socket.event(JSON.stringify({ session: id }), "open");
    const session = internals.open(socket, admission.request, admission.state, {
      slot: admission.slot,
      expiresAt: admission.expiresAt,
      // The typed client speaks `socketapi` on this transport: it is told its expiry.
      protocol: SOCKETAPI_PROTOCOL,
    });
    const posts = new OrderedPosts(
      (body) => this.#feed(session, body),
      limits.maxQueuedBytes,
      () => socket.close(1002, "Missing request"),
    );
    this.#held.set(id, { session, socket, posts });
    socket.onClosed = (code, reason) => {
      this.#held.delete(id);
      posts.clear();
      session.handleClose(code, reason);
    };
    await this.#listen();
    return new Response(socket.stream, { status: 200, headers: STREAM_HEADERS });
  }

  /**
   * Feeds a POST's frames (one per line) to its session, here or, over the relay, on the
   * instance that holds it. 204 once fed (or held for the POST before it); 202 when sent
   * on to another instance; 404 for a session nobody holds; 413 past `maxFrameBytes`.
   */
  async post(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const id = url.searchParams.get("session") ?? "";
    const seq = Number(url.searchParams.get("seq") ?? Number.NaN);
    const body = await readBounded(request, this.#app.limits.maxFrameBytes);
    if (body === undefined) {
      return text(413, `Body exceeds ${this.#app.limits.maxFrameBytes} bytes.`);
    }
    const held = this.#held.get(id);
    if (held) return this.#take(held, seq, body);
    const instance = id.slice(0, id.indexOf("."));
    const hub = internalsOf(this.#app).hub;
    if (instance === "" || instance === this.instance || !hub.relay) {
      return text(404, "Unknown session.");
    }
    const forwarded: Forwarded = { s: id, q: seq, b: body };
    await hub.sendDirect(`${FALLBACK_TOPIC}/${instance}`, JSON.stringify(forwarded));
    return new Response(null, { status: 202 });
  }

  #take(held: Held, seq: number, body: string): Response {
    const outcome = held.posts.take(seq, body);
    if (outcome === "refused") return text(409, "Out of order.");
    return new Response(null, { status: 204 });
  }

  /** The client's frames: one per line, each served as a text frame of a socket. */
  #feed(session: Session<object>, body: string): void {
    let start = 0;
    while (start < body.length) {
      let end = body.indexOf("\n", start);
      if (end === -1) end = body.length;
      if (end > start) session.receiveText(body.slice(start, end));
      start = end + 1;
    }
  }

  /** Hears, once, the POSTs other instances forward to this one's sessions. */
  #listen(): Promise<void> {
    const hub = internalsOf(this.#app).hub;
    if (!hub.relay) return Promise.resolve();
    this.#listening ??= hub.listenDirect(`${FALLBACK_TOPIC}/${this.instance}`, (message) => {
      let forwarded: Forwarded;
      try {
        forwarded = JSON.parse(message) as Forwarded;
      } catch {
        return;
      }
      const held = this.#held.get(String(forwarded.s));
      if (held && typeof forwarded.b === "string") {
        this.#take(held, Number(forwarded.q), forwarded.b);
      }
    });
    return this.#listening;
  }

  /**
   * Closes every session it holds with `code` (a shutdown: 1001); settles once their close
   * events were pulled by the HTTP layer, or after `timeout` ms.
   */
  closeAll(code: number, reason: string, timeout = 1000): Promise<void> {
    const sockets = [...this.#held.values()].map(({ socket }) => socket);
    for (const socket of sockets) socket.close(code, reason);
    if (sockets.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeout);
      Promise.all(sockets.map((socket) => socket.drained)).then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

const registries = new WeakMap<object, FallbackSessions>();

/** The fallback sessions of `app` here, made on first use. */
// biome-ignore lint/suspicious/noExplicitAny: any app can be served.
export function fallbackSessionsOf(app: SocketAPI<any, any, any>): FallbackSessions {
  let sessions = registries.get(app);
  if (!sessions) {
    sessions = new FallbackSessions(app);
    registries.set(app, sessions);
  }
  return sessions;
}
