import WebSocket from "ws";
import type { Codec } from "../../src/protocol/codec.ts";
import type { Frame } from "./fake-client.ts";

/** A real WebSocket client for end-to-end tests, with the same reading helpers. */
export class WsClient {
  readonly ws: WebSocket;
  readonly frames: string[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  /** The server's `Sec-WebSocket-Extensions`, once upgraded. */
  extensionsHeader: string | undefined = undefined;
  #read = 0;
  #waiters: (() => void)[] = [];

  /** The codec it offered; frames are sent in it once the server chose it. */
  readonly codec: Codec | undefined;

  constructor(
    url: string,
    headers: Record<string, string> = {},
    protocols?: string[],
    options: WebSocket.ClientOptions & { codec?: Codec | undefined } = {},
  ) {
    const { codec, ...wsOptions } = options;
    this.codec = codec;
    const offered =
      codec === undefined ? protocols : [codec.protocol, ...(protocols ?? ["socketapi"])];
    this.ws =
      offered === undefined
        ? new WebSocket(url, { ...wsOptions, headers })
        : new WebSocket(url, offered, { ...wsOptions, headers });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", () => resolve());
      this.ws.once("error", reject);
      this.ws.once("unexpected-response", (_req, res) =>
        reject(
          Object.assign(new Error(`HTTP ${res.statusCode}`), {
            status: res.statusCode,
            retryAfter: res.headers["retry-after"],
          }),
        ),
      );
    });
    this.ws.once("upgrade", (response) => {
      this.extensionsHeader = response.headers["sec-websocket-extensions"];
    });
    this.closed = new Promise((resolve) => {
      this.ws.once("close", (code, reason) => {
        this.#wake();
        resolve({ code, reason: reason.toString() });
      });
    });
    this.ws.on("message", (data, isBinary) => {
      // A codec's frames are kept as the JSON text they encode, for the same reading helpers.
      const speaks = this.speaks;
      if (isBinary && speaks) this.frames.push(JSON.stringify(speaks.decode(data as Buffer)));
      else this.frames.push(isBinary ? "<binary>" : data.toString());
      this.#wake();
    });
    this.ws.on("error", () => {});
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** The codec the connection speaks: the one offered, when the server chose it. */
  get speaks(): Codec | undefined {
    return this.codec && this.ws.protocol === this.codec.protocol ? this.codec : undefined;
  }

  send(frame: unknown): void {
    const speaks = this.speaks;
    this.ws.send(speaks ? speaks.encode(frame) : JSON.stringify(frame));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  async next(ms = 2000): Promise<Frame> {
    const deadline = Date.now() + ms;
    while (this.#read >= this.frames.length) {
      const left = deadline - Date.now();
      if (left <= 0 || this.ws.readyState >= WebSocket.CLOSING) {
        throw new Error(`no frame within ${ms} ms (readyState ${this.ws.readyState})`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return JSON.parse(this.frames[this.#read++] as string);
  }

  /**
   * The first unread frame that `matches`, waiting for it; the frames before it stay unread,
   * in order, for `next`.
   */
  async take(matches: (frame: Frame) => boolean, ms = 2000): Promise<Frame> {
    const deadline = Date.now() + ms;
    let scanned = this.#read;
    for (;;) {
      for (; scanned < this.frames.length; scanned++) {
        const frame = JSON.parse(this.frames[scanned] as string) as Frame;
        if (matches(frame)) {
          this.frames.splice(scanned, 1);
          return frame;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0 || this.ws.readyState >= WebSocket.CLOSING) {
        throw new Error(`no matching frame within ${ms} ms (readyState ${this.ws.readyState})`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async expectNone(ms = 100): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (this.#read < this.frames.length) {
      throw new Error(`expected no frame, got ${this.frames[this.#read]}`);
    }
  }

  /** The data frames that come until none has come for `quiet` ms (others are read past). */
  async dataUntilQuiet(quiet = 300): Promise<Frame[]> {
    const frames: Frame[] = [];
    for (;;) {
      let frame: Frame;
      try {
        frame = await this.next(quiet);
      } catch {
        return frames;
      }
      if (frame.type === "data") frames.push(frame);
    }
  }

  async request(frame: unknown, ms?: number): Promise<Frame> {
    this.send(frame);
    return this.next(ms);
  }

  /** Bytes read from and written to its TCP socket so far. */
  get wire(): { read: number; written: number } {
    const socket = (this.ws as unknown as { _socket: { bytesRead: number; bytesWritten: number } })
      ._socket;
    return { read: socket.bytesRead, written: socket.bytesWritten };
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close();
    return this.closed;
  }
}

/** Opens a client and waits until it is connected. */
export async function openClient(
  url: string,
  headers?: Record<string, string>,
  protocols?: string[],
  options?: WebSocket.ClientOptions & { codec?: Codec | undefined },
): Promise<WsClient> {
  const client = new WsClient(url, headers, protocols, options);
  await client.opened;
  return client;
}
