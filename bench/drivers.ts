// The load generator's clients: one connection per driver, SocketAPI's protocol over a plain
// WebSocket or Socket.IO's with socket.io-client, the same calls for both.
import { io, type Socket } from "socket.io-client";

/** Which protocol the subject speaks, and for SocketAPI whether fan-out uses history. */
export interface DriverOptions {
  protocol: "socketapi" | "socketio";
  /** Subscribe to and broadcast on the channel with history. */
  history?: boolean;
}

/** One client connection, whatever the protocol: actions with a callback per answer. */
export interface Driver {
  add(a: number, b: number, done: (sum: number) => void): void;
  subscribe(onData: (seq: number) => void): Promise<void>;
  broadcast(count: number): Promise<void>;
  /** One broadcast carrying `seq`. */
  broadcastSeq(seq: number): Promise<void>;
  /** How many messages the instance's relay received. */
  relayReceived(): Promise<number>;
  /**
   * Calls the streaming action `name`: `onChunk` for each chunk, resolved at its end; the
   * returned `cancel` sends a cancel (SocketAPI's protocol only).
   */
  stream(
    name: string,
    data: unknown,
    onChunk: () => void,
  ): { readonly done: Promise<unknown>; cancel(): void };
  close(): void;
}

async function socketapiDriver(url: string, history = false): Promise<Driver> {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  let nextId = 1;
  const pending = new Map<number, (data: unknown) => void>();
  const chunks = new Map<number, () => void>();
  let onData: ((seq: number) => void) | undefined;
  ws.onmessage = (event) => {
    const frame = JSON.parse(event.data as string);
    if (frame.type === "data") onData?.(frame.data.seq);
    else if (frame.type === "chunk") chunks.get(frame.id)?.();
    else {
      chunks.delete(frame.id);
      const resolve = pending.get(frame.id);
      pending.delete(frame.id);
      resolve?.(frame.data);
    }
  };
  const request = (frame: Record<string, unknown>, done: (data: unknown) => void) => {
    const id = nextId++;
    pending.set(id, done);
    ws.send(JSON.stringify({ ...frame, id }));
  };
  return {
    add: (a, b, done) =>
      request(
        { type: "action", channel: "add_numbers", data: { a, b } },
        done as (d: unknown) => void,
      ),
    subscribe: (listener) =>
      new Promise((resolve) => {
        onData = listener;
        request({ type: "subscribe", channel: history ? "fanout_history" : "fanout" }, () =>
          resolve(),
        );
      }),
    broadcast: (count) =>
      new Promise((resolve) =>
        request({ type: "action", channel: "broadcast", data: { count, history } }, () =>
          resolve(),
        ),
      ),
    broadcastSeq: (seq) =>
      new Promise((resolve) =>
        request({ type: "action", channel: "broadcast_seq", data: { seq } }, () => resolve()),
      ),
    relayReceived: () =>
      new Promise((resolve) =>
        request({ type: "action", channel: "relay_stats" }, (data) =>
          resolve((data as { received: number }).received),
        ),
      ),
    stream: (name, data, onChunk) => {
      const id = nextId;
      chunks.set(id, onChunk);
      const done = new Promise((resolve) =>
        request({ type: "action", channel: name, data }, resolve),
      );
      return {
        done,
        cancel: () => ws.send(JSON.stringify({ type: "cancel", channel: name, id })),
      };
    },
    close: () => ws.close(),
  };
}

async function socketioDriver(url: string): Promise<Driver> {
  const socket: Socket = io(url.replace(/^ws/, "http"), {
    transports: ["websocket"],
    reconnection: false,
  });
  await new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(undefined));
    socket.once("connect_error", reject);
  });
  return {
    add: (a, b, done) => socket.emit("add_numbers", { a, b }, done),
    subscribe: (listener) =>
      new Promise((resolve) => {
        socket.on("fanout", (data: { seq: number }) => listener(data.seq));
        socket.emit("subscribe", () => resolve());
      }),
    broadcast: (count) =>
      new Promise((resolve) => socket.emit("broadcast", { count }, () => resolve())),
    broadcastSeq: (seq) =>
      new Promise((resolve) => socket.emit("broadcast_seq", { seq }, () => resolve())),
    relayReceived: () =>
      new Promise((resolve) =>
        socket.emit("relay_stats", (stats: { received: number }) => resolve(stats.received)),
      ),
    stream: () => {
      throw new Error("Socket.IO has no streaming answers.");
    },
    close: () => socket.disconnect(),
  };
}

/** `count` connections, the i-th to `urls[i % urls.length]`, opened 100 at a time. */
export async function connect(
  count: number,
  urls: string[],
  { protocol, history = false }: DriverOptions,
): Promise<Driver[]> {
  const drivers: Driver[] = [];
  for (let i = 0; i < count; i += 100) {
    const batch = Array.from({ length: Math.min(100, count - i) }, (_, j) => {
      const url = urls[(i + j) % urls.length] as string;
      return protocol === "socketio" ? socketioDriver(url) : socketapiDriver(url, history);
    });
    drivers.push(...(await Promise.all(batch)));
  }
  return drivers;
}
