// The client's side of the fallback transport, for networks that let no WebSocket through:
// the server's frames arrive as Server-Sent Events on one GET (read with `fetch`, which
// every runtime has and which can send the token as a header), the client's go out as
// POSTs, one at a time, in order, several frames to a POST when they queue up. To the
// client it is a socket like the WebSocket it stands in for.

import type { ClientSocket } from "./client-options.ts";
import type { HandshakeFailure } from "./refusal.ts";

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

/** The most frames, and characters, one POST carries. */
const MAX_FRAMES_PER_POST = 64;
const MAX_CHARS_PER_POST = 128 * 1024;

/** What a fallback socket is opened with. */
export interface FallbackSocketOptions {
  /** The token, sent as `Authorization: Bearer …` (an EventSource could not). */
  token?: string | undefined;
  /** The `fetch` to use; default the global one. */
  fetch?: typeof fetch | undefined;
}

/** One event of a stream: its name (`message` when it has none) and its data. */
interface StreamEvent {
  event: string;
  data: string;
}

/** Splits a text/event-stream into events as it arrives. */
export class EventReader {
  #buffer = "";

  /** The complete events in `chunk` (and what came before it). */
  take(chunk: string): StreamEvent[] {
    this.#buffer += chunk.replace(/\r\n?/g, "\n");
    const events: StreamEvent[] = [];
    for (let end = this.#buffer.indexOf("\n\n"); end !== -1; end = this.#buffer.indexOf("\n\n")) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
      if (data.length > 0) events.push({ event, data: data.join("\n") });
    }
    return events;
  }
}

/**
 * A WebSocket stand-in over HTTP: `GET url` (Accept: text/event-stream) streams the
 * server's frames; `POST url?session=ID&seq=N` sends the client's, one per line.
 */
export class FallbackSocket implements ClientSocket {
  readyState: number = CONNECTING;
  readonly protocol = "socketapi";
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: string }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  /** Told when the server refused the stream (its status and body): the client's refusal. */
  onrefused: ((failure: HandshakeFailure) => void) | null = null;
  readonly #url: string;
  readonly #fetch: typeof fetch;
  readonly #abort = new AbortController();
  #session: string | undefined;
  #seq = 0;
  readonly #queue: string[] = [];
  #posting = false;
  #closedWith: { code: number; reason: string } | undefined;

  constructor(url: string, options: FallbackSocketOptions = {}) {
    const http = new URL(url);
    http.protocol = http.protocol === "wss:" ? "https:" : "http:";
    this.#url = http.href;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    this.#fetch(this.#url, { headers, signal: this.#abort.signal, cache: "no-store" })
      .then((response) => this.#read(response))
      .catch((error: unknown) => {
        if (this.readyState !== CLOSED) this.onerror?.({ message: String(error) });
      })
      .finally(() => this.#ended());
  }

  send(data: string | Uint8Array<ArrayBuffer>): void {
    if (this.readyState !== OPEN) throw new Error("The fallback socket is not open.");
    if (typeof data !== "string") throw new Error("The fallback transport carries text only.");
    this.#queue.push(data);
    this.#post();
  }

  close(code = 1000, reason = ""): void {
    if (this.readyState === CLOSED) return;
    this.#closedWith ??= { code, reason };
    this.#abort.abort();
  }

  async #read(response: Response): Promise<void> {
    if (!response.ok || !response.body) {
      const reason = (await response.text().catch(() => "")).trim().slice(0, 200);
      this.onrefused?.({ status: response.status, reason });
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const events = new EventReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      for (const { event, data } of events.take(value)) this.#event(event, data);
    }
  }

  #event(event: string, data: string): void {
    if (event === "message") {
      if (this.readyState === OPEN) this.onmessage?.({ data });
    } else if (event === "open" && this.readyState === CONNECTING) {
      try {
        this.#session = String((JSON.parse(data) as { session?: unknown }).session);
      } catch {
        return;
      }
      this.readyState = OPEN;
      this.onopen?.({});
    } else if (event === "close") {
      try {
        const { code, reason } = JSON.parse(data) as { code?: unknown; reason?: unknown };
        this.#closedWith = {
          code: typeof code === "number" ? code : 1006,
          reason: typeof reason === "string" ? reason : "",
        };
      } catch {}
    }
  }

  /** Sends what waits in one POST, when none is under way; the next when it is answered. */
  #post(): void {
    if (this.#posting || this.#queue.length === 0 || this.readyState !== OPEN) return;
    let count = 0;
    let chars = 0;
    while (
      count < this.#queue.length &&
      count < MAX_FRAMES_PER_POST &&
      (count === 0 || chars + (this.#queue[count] as string).length < MAX_CHARS_PER_POST)
    ) {
      chars += (this.#queue[count] as string).length + 1;
      count += 1;
    }
    const body = this.#queue.splice(0, count).join("\n");
    const url = new URL(this.#url);
    url.searchParams.set("session", this.#session ?? "");
    url.searchParams.set("seq", String(this.#seq++));
    this.#posting = true;
    this.#fetch(url.href, {
      method: "POST",
      body,
      headers: { "content-type": "text/plain;charset=UTF-8" },
      signal: this.#abort.signal,
    })
      .then((response) => {
        // The session is gone (404), or the server could not take the POST: end the transport.
        if (response.status !== 204 && response.status !== 202) this.close(1006, "");
        this.#posting = false;
        this.#post();
      })
      .catch(() => this.close(1006, ""));
  }

  #ended(): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.#abort.abort();
    const { code, reason } = this.#closedWith ?? { code: 1006, reason: "" };
    this.onclose?.({ code, reason });
  }
}
