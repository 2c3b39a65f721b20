// One load process of the reconnect storm: `share` clients, each subscribed to one of the
// 100 rooms, from its own loopback source address (so that two waves of 19,000 stay clear
// of the ephemeral-port range). SocketAPI's typed client (ws underneath), or
// socket.io-client. It watches every client and answers the commands of bench/storm/run.ts
// on stdin, one JSON line on stdout each:
//
//   connect  open every client and subscribe; answers when all are subscribed
//   mark     from now on, a client that drops is "away" until it is "back"
//   status   counts: open, away, back, recovered, reset, gaps, duplicates, refusals, ...
//   close
//
// A typed client is back when, after its socket dropped, it received a data frame (the
// broadcasts it missed, `info.recovered`, or a live one) or a reset (told that what it
// missed cannot be sent). Offsets are checked on every frame: a hole that no reset told
// of is a gap, an offset seen twice a duplicate.
import { createInterface } from "node:readline";
import { io, type Socket } from "socket.io-client";
import WebSocket from "ws";
import { createClient, type SocketAPIClient } from "../../src/client/index.ts";
import type { StormApp } from "./socketapi-server.ts";

interface Options {
  url: string;
  protocol: "socketapi" | "socketio";
  share: number;
  /** The first client's global number: client i subscribes to room i % 100. */
  first: number;
  localAddress: string;
}

const options = JSON.parse(process.argv[2] ?? "{}") as Options;
const reply = (message: Record<string, unknown>) => console.log(JSON.stringify(message));

/** What one client went through. */
class Watched {
  away = false;
  back = false;
  /** Told, since it was marked, that what it missed could not be sent. */
  reset = false;
  /** Received broadcasts missed while away (`info.recovered`). */
  recoveredFrames = 0;
  lastOffset: number | undefined = undefined;
  epoch: string | undefined = undefined;
  gaps = 0;
  duplicates = 0;
  received = 0;
  open = false;
  gaveUp = false;

  data(offset: number | undefined, epoch: string | undefined, recovered: boolean): void {
    this.received++;
    if (recovered) this.recoveredFrames++;
    if (offset !== undefined) {
      if (this.lastOffset !== undefined && epoch === this.epoch) {
        if (offset <= this.lastOffset) this.duplicates++;
        else if (offset !== this.lastOffset + 1) this.gaps++;
      } else if (this.lastOffset !== undefined && epoch !== this.epoch) {
        // Another stream without a reset: what came before is lost without a word.
        this.gaps++;
      }
      this.lastOffset = offset;
      this.epoch = epoch;
    }
    if (this.away) this.back = true;
  }

  resetHeard(): void {
    this.reset = true;
    this.lastOffset = undefined;
    this.epoch = undefined;
    if (this.away) this.back = true;
  }
}

const watched: Watched[] = [];
const closers: (() => void)[] = [];
let marked = false;
let refusals = 0;
/** Subscribes answered by nothing within the client's timeout (10 s). */
let timeouts = 0;
/** What the clients' `onError` heard since the mark, by code. */
let errorsByCode: Record<string, number> = {};
let refusalsByStatus: Record<string, number> = {};

/** `ws` from this process's source address: the typed client constructs it with (url, protocols). */
class BoundWebSocket extends WebSocket {
  constructor(url: string | URL, protocols?: string | string[]) {
    super(url, protocols, { localAddress: options.localAddress });
  }
}

function typedClient(index: number): Promise<void> {
  const watch = new Watched();
  watched.push(watch);
  const client: SocketAPIClient<StormApp> = createClient<StormApp>(options.url, {
    WebSocket: BoundWebSocket as unknown as typeof globalThis.WebSocket,
  });
  closers.push(() => client.close());
  client.onStatus((status) => {
    watch.open = status === "open";
    if (status === "reconnecting" && marked && !watch.away) watch.away = true;
    if (status === "closed") watch.gaveUp = true;
  });
  client.onError((error) => {
    errorsByCode[error.code] = (errorsByCode[error.code] ?? 0) + 1;
    if (error.status !== undefined) {
      refusals++;
      refusalsByStatus[error.status] = (refusalsByStatus[error.status] ?? 0) + 1;
    }
  });
  const room = `rooms/${(options.first + index) % 100}` as `rooms/${string}`;
  // A first subscribe that timed out is rejected and dropped by the client: asked again
  // here, as an app would, and counted.
  const subscribe = (): Promise<void> =>
    client
      .subscribe(room, {
        data: (_data, info) => watch.data(info.offset, info.epoch, info.recovered),
        reset: () => watch.resetHeard(),
      })
      .ready.catch(() => {
        timeouts++;
        return subscribe();
      });
  return subscribe();
}

function socketioClient(index: number): Promise<void> {
  const watch = new Watched();
  watched.push(watch);
  const room = `rooms/${(options.first + index) % 100}`;
  const socket: Socket = io(options.url.replace(/^ws/, "http"), {
    transports: ["websocket"],
    localAddress: options.localAddress,
  } as Parameters<typeof io>[1]);
  closers.push(() => socket.close());
  socket.on("data", () => {
    watch.received++;
    if (watch.away && socket.recovered) watch.recoveredFrames++;
  });
  socket.on("disconnect", () => {
    watch.open = false;
    if (marked) watch.away = true;
  });
  socket.io.on("reconnect_failed", () => {
    watch.gaveUp = true;
  });
  return new Promise<void>((resolve) => {
    socket.on("connect", () => {
      watch.open = true;
      // Recovered: the server gave back its rooms and missed packets; else it joins again
      // and what it missed is gone (a reset, in SocketAPI's terms).
      if (socket.recovered) {
        if (watch.away) watch.back = true;
        resolve();
        return;
      }
      socket.emit("join", room, () => {
        if (watch.away) {
          watch.reset = true;
          watch.back = true;
        }
        resolve();
      });
    });
  });
}

const commands: Record<string, () => Promise<void>> = {
  async connect() {
    const started = Date.now();
    const make = options.protocol === "socketapi" ? typedClient : socketioClient;
    const ready: Promise<void>[] = [];
    // In waves, so that the first connect is not itself a storm against the server.
    for (let i = 0; i < options.share; i++) {
      ready.push(make(i));
      if (i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    let settled = 0;
    const progress = setInterval(
      () => console.error(`  ${options.localAddress}: ${settled} of ${ready.length} subscribed`),
      10_000,
    );
    await Promise.all(ready.map((one) => one.then(() => settled++)));
    clearInterval(progress);
    reply({ connected: watched.length, ms: Date.now() - started });
  },
  async mark() {
    marked = true;
    refusals = 0;
    refusalsByStatus = {};
    timeouts = 0;
    errorsByCode = {};
    for (const watch of watched) {
      watch.away = false;
      watch.back = false;
      watch.reset = false;
      watch.recoveredFrames = 0;
    }
    reply({ marked: watched.length });
  },
  async status() {
    let open = 0;
    let away = 0;
    let back = 0;
    let reset = 0;
    let recovered = 0;
    let gaps = 0;
    let duplicates = 0;
    let received = 0;
    let gaveUp = 0;
    for (const watch of watched) {
      if (watch.open) open++;
      if (watch.away) away++;
      if (watch.back) back++;
      if (watch.away && watch.back && watch.reset) reset++;
      if (watch.away && watch.back && !watch.reset) recovered++;
      gaps += watch.gaps;
      duplicates += watch.duplicates;
      received += watch.received;
      if (watch.gaveUp) gaveUp++;
    }
    reply({
      open,
      away,
      back,
      reset,
      recovered,
      gaps,
      duplicates,
      received,
      gaveUp,
      refusals,
      refusalsByStatus,
      timeouts,
      errorsByCode,
    });
  },
  async close() {
    for (const close of closers) close();
    reply({ closed: true });
    setTimeout(() => process.exit(0), 200);
  },
};

for await (const line of createInterface({ input: process.stdin })) {
  const command = commands[line.trim()];
  if (command) await command();
}
