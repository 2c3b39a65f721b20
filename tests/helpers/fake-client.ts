import { admitUpgrade, openConnection, type Session, type SocketLike } from "../../src/adapter.ts";
import type { SocketAPI } from "../../src/index.ts";

// biome-ignore lint/suspicious/noExplicitAny: tests drive any app.
type AnyApp = SocketAPI<any, any, any>;

/** A frame as the client received it, parsed. */
// biome-ignore lint/suspicious/noExplicitAny: frames are checked by the tests.
export type Frame = Record<string, any>;

/** An in-memory socket: records what the server sends, can be made to fail. */
export class FakeSocket implements SocketLike {
  readyState = 1;
  bufferedAmount = 0;
  readonly sent: string[] = [];
  closedWith: { code: number | undefined; reason: string | undefined } | undefined;
  /** When set, every send throws, as a broken socket does. */
  failSends = false;
  onClose: ((code: number, reason: string) => void) | undefined;
  #waiters: (() => void)[] = [];

  send(data: string): void {
    if (this.failSends) throw new Error("broken pipe");
    this.sent.push(data);
    for (const wake of this.#waiters.splice(0)) wake();
  }

  close(code?: number, reason?: string): void {
    if (this.readyState >= 2) return;
    this.readyState = 3;
    this.closedWith = { code, reason };
    this.onClose?.(code ?? 1005, reason ?? "");
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Resolves when something is sent or the socket closes, or after `ms`. */
  waitForActivity(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** A client connected to an app through a {@link FakeSocket}: no network at all. */
export class FakeClient {
  readonly socket: FakeSocket;
  readonly session: Session;
  #read = 0;

  constructor(socket: FakeSocket, session: Session) {
    this.socket = socket;
    this.session = session;
  }

  send(frame: unknown): void {
    this.session.receiveText(JSON.stringify(frame));
  }

  sendRaw(text: string): void {
    this.session.receiveText(text);
  }

  sendBinary(): void {
    this.session.receiveBinary();
  }

  /** The next frame the server sent; fails after `ms` without one. */
  async next(ms = 1000): Promise<Frame> {
    const deadline = Date.now() + ms;
    while (this.#read >= this.socket.sent.length) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${ms} ms`);
      await this.socket.waitForActivity(left);
    }
    return JSON.parse(this.socket.sent[this.#read++] as string);
  }

  /** Fails if the server sends anything within `ms`. */
  async expectNone(ms = 30): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (this.#read < this.socket.sent.length) {
      throw new Error(`expected no frame, got ${this.socket.sent[this.#read]}`);
    }
  }

  /** Sends a frame and returns the next one. */
  async request(frame: unknown, ms?: number): Promise<Frame> {
    this.send(frame);
    return this.next(ms);
  }

  /** The client goes away: the socket closes with 1000. */
  disconnect(): void {
    this.socket.close(1000, "bye");
  }
}

/** Connects a fake client to `app`, through `onConnect`; throws the refusal if refused. */
export async function connect(
  app: AnyApp,
  request: { url?: string; headers?: Record<string, string> } = {},
): Promise<FakeClient> {
  const upgrade = {
    url: request.url ?? "http://127.0.0.1/",
    headers: new Headers(request.headers ?? {}),
  };
  const admission = await admitUpgrade(app, upgrade);
  if (!admission.ok) throw admission.response;
  const socket = new FakeSocket();
  const session = openConnection(app, socket, upgrade, admission.state, { slot: admission.slot });
  socket.onClose = (code, reason) => session.handleClose(code, reason);
  return new FakeClient(socket, session);
}
