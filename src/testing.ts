/**
 * An in-memory test client over the real core: no sockets, no ports. It goes through the
 * app's `onConnect`, and offers both the typed calls of `socketapi/client` and raw frames,
 * for tests of what a client sees.
 *
 * @example
 * ```ts
 * import { createTestClient } from "socketapi/testing";
 * import app from "./main.ts";
 *
 * const client = await createTestClient(app);
 * expect(await client.action("add_numbers", { a: 5, b: 3 })).toBe(8);
 * client.send({ type: "action", channel: "nope" });
 * expect((await client.next()).code).toBe("NOT_FOUND");
 * ```
 *
 * @module
 */
import type { AnyApp } from "./app.ts";
import { SocketAPIClient } from "./client/client.ts";
import type { ClientOptions, ClientSocket } from "./client/client-options.ts";
import type { Connection, UpgradeRequest } from "./context.ts";
import { admitUpgrade, openConnection } from "./serve/app-internals.ts";
import type { Session } from "./serve/session.ts";
import type { SocketLike } from "./serve/socket.ts";

/** A frame as the test client received it, parsed. */
// biome-ignore lint/suspicious/noExplicitAny: tests check frames by hand.
export type Frame = Record<string, any>;

/** Options of {@link createTestClient}. */
export interface TestClientOptions extends Omit<ClientOptions, "WebSocket"> {
  /** The upgrade request's URL (default `http://127.0.0.1/`). */
  url?: string | undefined;
  /** The upgrade request's headers. */
  headers?: Record<string, string> | undefined;
}

/** The upgrade was refused by `onConnect`: the HTTP answer a real client would get. */
export class ConnectionRefusedError extends Error {
  readonly response: Response;
  readonly status: number;

  constructor(response: Response) {
    super(`The upgrade was refused with HTTP ${response.status}.`);
    this.name = "ConnectionRefusedError";
    this.response = response;
    this.status = response.status;
  }
}

/** Both ends of one in-memory connection. Frames cross in order, one microtask later. */
class MemoryConnection {
  readyState = 0;
  readonly received: string[] = [];
  session: Session<object> | undefined;
  refusal: Response | undefined;
  readonly #waiters: (() => void)[] = [];
  readonly client: ClientSocket;
  readonly server: SocketLike;

  constructor(app: AnyApp, request: UpgradeRequest) {
    const connection = this;
    this.client = {
      get readyState() {
        return connection.readyState;
      },
      send(data: string) {
        if (connection.readyState !== 1) throw new Error("The test connection is not open.");
        queueMicrotask(() => connection.session?.receiveText(data));
      },
      close(code = 1000, reason = "") {
        connection.#close(code, reason);
      },
      onopen: null,
      onmessage: null,
      onclose: null,
      onerror: null,
    };
    this.server = {
      get readyState() {
        return connection.readyState;
      },
      send(text: string) {
        queueMicrotask(() => {
          connection.received.push(text);
          for (const wake of connection.#waiters.splice(0)) wake();
          connection.client.onmessage?.({ data: text });
        });
      },
      close(code = 1000, reason = "") {
        connection.#close(code, reason);
      },
    };
    void Promise.resolve(admitUpgrade(app, request)).then((admission) => {
      if (!admission.ok) {
        this.refusal = admission.response;
        this.readyState = 3;
        this.client.onerror?.({});
        this.client.onclose?.({ code: 1006, reason: "" });
        return;
      }
      // As an adapter does: the request without a token offered, the credential's expiry.
      this.session = openConnection(app, this.server, admission.request, admission.state, {
        slot: admission.slot,
        protocol: admission.protocol,
        expiresAt: admission.expiresAt,
      });
      this.readyState = 1;
      this.session.greet();
      this.client.onopen?.({});
    });
  }

  #close(code: number, reason: string): void {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    queueMicrotask(() => {
      this.readyState = 3;
      this.session?.handleClose(code, reason);
      for (const wake of this.#waiters.splice(0)) wake();
      this.client.onclose?.({ code, reason });
    });
  }

  /** Resolves when a frame arrives or the connection closes, or after `ms`. */
  activity(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/**
 * A client connected to an app in memory: the typed `action` and `subscribe` of
 * `socketapi/client`, plus raw frames for what a hand-written client would send.
 */
export class TestClient<App = unknown> extends SocketAPIClient<App> {
  readonly #connections: { current: MemoryConnection | undefined };
  #read = 0;

  constructor(
    connections: { current: MemoryConnection | undefined },
    url: string,
    options: ClientOptions,
  ) {
    super(url, options);
    this.#connections = connections;
  }

  get #connection(): MemoryConnection {
    const connection = this.#connections.current;
    if (!connection) throw new Error("The test client is not connected.");
    return connection;
  }

  /** The connection as the server's handlers see it. */
  get connection(): Connection<object> {
    const session = this.#connection.session;
    if (!session) throw new Error("The test client is not connected.");
    return session;
  }

  /** Every frame received so far, as sent. */
  get frames(): readonly string[] {
    return this.#connection.received;
  }

  /** Sends a frame as JSON. */
  send(frame: unknown): void {
    this.sendRaw(JSON.stringify(frame));
  }

  /** Sends a text frame as it is. */
  sendRaw(text: string): void {
    this.#connection.client.send(text);
  }

  /** Sends a binary frame (the server refuses it). */
  sendBinary(): void {
    queueMicrotask(() => this.#connection.session?.receiveBinary());
  }

  /** The next frame not read yet; fails after `ms` without one. */
  async next(ms = 1000): Promise<Frame> {
    const deadline = Date.now() + ms;
    while (this.#read >= this.#connection.received.length) {
      const left = deadline - Date.now();
      if (left <= 0 || this.#connection.readyState === 3)
        throw new Error(`No frame within ${ms} ms.`);
      await this.#connection.activity(left);
    }
    return JSON.parse(this.#connection.received[this.#read++] as string);
  }

  /** Fails if a frame arrives within `ms`. */
  async expectNone(ms = 20): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    const unread = this.#connection.received[this.#read];
    if (unread !== undefined) throw new Error(`Expected no frame, got ${unread}`);
  }

  /** Sends a frame and returns the next one. */
  async request(frame: unknown, ms?: number): Promise<Frame> {
    this.send(frame);
    return this.next(ms);
  }

  /** Goes away as a client does: the socket closes (default 1000). */
  disconnect(code = 1000, reason = ""): void {
    this.#connection.client.close(code, reason);
  }
}

/**
 * Connects an in-memory client to `app` through its `onConnect`. Resolves once connected;
 * rejects with a {@link ConnectionRefusedError} when `onConnect` refused.
 *
 * @example
 * ```ts
 * const client = await createTestClient<typeof app>(app, { headers: { authorization: "Bearer t" } });
 * const stop = client.subscribe("chat", (data) => seen.push(data));
 * await stop.ready;
 * await app.channels.chat({ message: "hi" });
 * ```
 */
export async function createTestClient<App extends AnyApp>(
  app: App,
  options: TestClientOptions = {},
): Promise<TestClient<App>> {
  const { url = "http://127.0.0.1/", headers = {}, ...clientOptions } = options;
  // Made when the client opens its socket: with a `token`, once the token is known, and
  // offering the subprotocols the client asks for, as a real upgrade would.
  const connections: { current: MemoryConnection | undefined } = { current: undefined };
  const MemoryWebSocket = function MemoryWebSocket(_url: string, protocols?: string | string[]) {
    const offered = new Headers(headers);
    if (protocols !== undefined && protocols.length > 0) {
      offered.set("sec-websocket-protocol", ([] as string[]).concat(protocols).join(", "));
    }
    connections.current = new MemoryConnection(app, { url, headers: offered });
    return connections.current.client;
  } as unknown as ClientOptions["WebSocket"];
  const client = new TestClient<App>(connections, url, {
    reconnect: false,
    heartbeat: false,
    ...clientOptions,
    WebSocket: MemoryWebSocket,
  });
  await new Promise<void>((resolve, reject) => {
    const stop = client.onStatus((status) => {
      if (status === "open") {
        stop();
        resolve();
      } else if (status === "closed") {
        stop();
        const refusal = connections.current?.refusal;
        reject(refusal ? new ConnectionRefusedError(refusal) : new Error("Not connected."));
      }
    });
  });
  return client;
}
