// One load process of the 100,000-connection scenario: `share` connections from its own
// loopback source address (a source address has about 28,000 ephemeral ports; a process
// may hold 20,000 open files), SocketAPI's protocol over `ws` or socket.io-client. It
// answers the commands of bench/hundred-thousand/run.ts on stdin, one JSON line each on
// stdout. Times are wall-clock milliseconds, comparable across the machine's processes.
//
//   connect                    open every connection, at most CONCURRENT handshakes at once
//   subscribe                  subscribe every connection to "everyone"
//   arm SEQ                    answer `delivered` once every connection has broadcast SEQ
//   missing                    how many have not had it yet
//   shout SEQ                  broadcast SEQ from the first connection (`published`: when sent)
//   actions N INFLIGHT SECONDS round trips on the first N connections, INFLIGHT each
//   close
import { createInterface } from "node:readline";
import { io, type Socket } from "socket.io-client";
import WebSocket from "ws";

interface Options {
  url: string;
  protocol: "socketapi" | "socketio";
  share: number;
  localAddress: string;
}

/** Handshakes in flight at once per process: below the servers' backlog of 4096 in all. */
const CONCURRENT = 256;
const options = JSON.parse(process.argv[2] ?? "{}") as Options;
const now = () => performance.timeOrigin + performance.now();
const reply = (message: Record<string, unknown>) => console.log(JSON.stringify(message));

/** One connection, whatever the protocol. */
interface Connection {
  subscribe(onData: (seq: number) => void): Promise<void>;
  shout(seq: number): Promise<void>;
  add(a: number, b: number): Promise<number>;
  close(): void;
}

function socketapiConnection(): Promise<Connection> {
  const ws = new WebSocket(options.url, { localAddress: options.localAddress });
  let nextId = 1;
  const pending = new Map<number, (data: unknown) => void>();
  let onData: ((seq: number) => void) | undefined;
  ws.on("message", (raw) => {
    const frame = JSON.parse(String(raw));
    if (frame.type === "data") onData?.(frame.data.seq);
    else {
      const resolve = pending.get(frame.id);
      pending.delete(frame.id);
      resolve?.(frame.data);
    }
  });
  const request = (frame: Record<string, unknown>) =>
    new Promise<unknown>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ ...frame, id }));
    });
  return new Promise((resolve, reject) => {
    ws.once("error", reject);
    ws.once("open", () =>
      resolve({
        subscribe: async (listener) => {
          onData = listener;
          await request({ type: "subscribe", channel: "everyone" });
        },
        shout: async (seq) => {
          await request({ type: "action", channel: "shout", data: { seq } });
        },
        add: async (a, b) =>
          (await request({ type: "action", channel: "add", data: { a, b } })) as number,
        close: () => ws.terminate(),
      }),
    );
  });
}

function socketioConnection(): Promise<Connection> {
  const socket: Socket = io(options.url.replace(/^ws/, "http"), {
    transports: ["websocket"],
    reconnection: false,
    localAddress: options.localAddress,
  } as Parameters<typeof io>[1]);
  return new Promise((resolve, reject) => {
    socket.once("connect_error", reject);
    socket.once("connect", () =>
      resolve({
        subscribe: (listener) => {
          socket.on("data", (data: { seq: number }) => listener(data.seq));
          return new Promise((done) => socket.emit("join", () => done()));
        },
        shout: (seq) => new Promise((done) => socket.emit("shout", seq, () => done())),
        add: (a, b) => new Promise((done) => socket.emit("add", a, b, done)),
        close: () => socket.close(),
      }),
    );
  });
}

const connections: Connection[] = [];
/** The broadcast awaited since `arm`, and how many connections have not had it yet. */
let armed: { seq: number; missing: number } | undefined;

/** Opens `count` connections, `CONCURRENT` at a time; one that fails is tried again. */
async function openAll(count: number): Promise<number> {
  const open = options.protocol === "socketapi" ? socketapiConnection : socketioConnection;
  let next = 0;
  let failures = 0;
  const lane = async () => {
    while (next < count) {
      next++;
      for (;;) {
        try {
          connections.push(await open());
          break;
        } catch {
          failures++;
          if (failures > count) throw new Error(`${failures} connects failed`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENT }, lane));
  return failures;
}

const commands: Record<string, (...args: number[]) => Promise<void>> = {
  async connect() {
    const started = now();
    const failures = await openAll(options.share);
    reply({ connected: connections.length, started, finished: now(), failures });
  },
  async subscribe() {
    const started = now();
    await Promise.all(
      connections.map((connection) =>
        connection.subscribe((seq) => {
          if (armed && seq === armed.seq && --armed.missing === 0) {
            reply({ delivered: now(), seq });
            armed = undefined;
          }
        }),
      ),
    );
    reply({ subscribed: connections.length, ms: now() - started });
  },
  async missing() {
    reply({ missing: armed?.missing ?? 0 });
  },
  async arm(seq = 0) {
    armed = { seq, missing: connections.length };
    reply({ armed: seq });
  },
  async shout(seq = 0) {
    const published = now();
    await connections[0]?.shout(seq);
    reply({ published, answered: now() });
  },
  async actions(count = 1, inflight = 1, seconds = 5) {
    const until = now() + seconds * 1000;
    let answered = 0;
    const loop = async (connection: Connection) => {
      while (now() < until) {
        await connection.add(1, 2);
        answered++;
      }
    };
    const loops: Promise<void>[] = [];
    for (const connection of connections.slice(0, count)) {
      for (let i = 0; i < inflight; i++) loops.push(loop(connection));
    }
    await Promise.all(loops);
    reply({ answered, seconds });
  },
  async close() {
    for (const connection of connections) connection.close();
    reply({ closed: connections.length });
    setTimeout(() => process.exit(0), 200);
  },
};

for await (const line of createInterface({ input: process.stdin })) {
  const [name, ...args] = line.trim().split(/\s+/);
  const command = commands[name ?? ""];
  if (command) await command(...args.map(Number));
}
