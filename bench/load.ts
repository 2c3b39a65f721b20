// The load generator: one scenario against one running server, in its own process, then
// one JSON line on stdout. Run with Bun (its WebSocket client is the fastest available
// here); Socket.IO subjects are driven with socket.io-client.
//
//   bun bench/load.ts '{"scenario":"actions","url":"ws://127.0.0.1:9000/","protocol":"socketapi",...}'
import { connect as connectDrivers, type Driver } from "./drivers.ts";

/** The sizes of the load, chosen by bench/run.ts. */
export interface LoadSizes {
  connections: number;
  inflight: number;
  warmup: number;
  duration: number;
  rate: number;
  subscribers: number;
  broadcasts: number;
  idle: number;
  /** Streaming answers at once (one per connection), and the chunks of each. */
  streams: number;
  chunks: number;
  /** Streams held open at once, for the memory an open stream holds. */
  held: number;
}

interface Options extends LoadSizes {
  scenario:
    | "actions"
    | "latency"
    | "fanout"
    | "memory"
    | "cluster"
    | "recovery"
    | "presence"
    | "streams"
    | "held";
  /** For `fanout` and `recovery` on SocketAPI: the channel with history. */
  history?: boolean;
  url: string;
  protocol: "socketapi" | "socketio";
  /** For `cluster`: the instances the subscribers are split between (the publisher is on the first). */
  urls?: string[];
  /** For `cluster`: an instance with no subscriber, whose relay should hear nothing. */
  idleUrl?: string;
}

const options = JSON.parse(process.argv[2] ?? "{}") as Options;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const connect = (count: number, urls: string[] = [options.url]) =>
  connectDrivers(count, urls, options);

/** Round trips per second with `inflight` requests kept in flight on each connection. */
async function actions(): Promise<Record<string, number>> {
  const drivers = await connect(options.connections);
  let counting = false;
  let answered = 0;
  let stopped = false;
  for (const driver of drivers) {
    const loop = (sum: number) => {
      if (counting) answered++;
      if (!stopped) driver.add(sum % 1000, 1, loop);
    };
    for (let i = 0; i < options.inflight; i++) driver.add(i, 1, loop);
  }
  await sleep(options.warmup * 1000);
  counting = true;
  const started = performance.now();
  await sleep(options.duration * 1000);
  counting = false;
  const seconds = (performance.now() - started) / 1000;
  stopped = true;
  await sleep(100);
  for (const driver of drivers) driver.close();
  return { value: answered / seconds };
}

/** p50 and p99 round-trip latency, in ms, at a fixed total rate. */
async function latency(): Promise<Record<string, number>> {
  const drivers = await connect(options.connections);
  const samples: number[] = [];
  let recording = false;
  const interval = (options.connections / options.rate) * 1000;
  const timers = drivers.map((driver) =>
    setInterval(() => {
      const sent = performance.now();
      driver.add(1, 2, () => {
        if (recording) samples.push(performance.now() - sent);
      });
    }, interval),
  );
  await sleep(options.warmup * 1000);
  recording = true;
  await sleep(options.duration * 1000);
  recording = false;
  for (const timer of timers) clearInterval(timer);
  await sleep(100);
  for (const driver of drivers) driver.close();
  samples.sort((x, y) => x - y);
  const at = (q: number) =>
    samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99), samples: samples.length };
}

/** Deliveries per second until every subscriber has all the broadcasts. */
async function fanout(): Promise<Record<string, number>> {
  const subscribers = await connect(options.subscribers);
  const [publisher] = await connect(1);
  let remaining = 0;
  let finished: () => void = () => {};
  await Promise.all(
    subscribers.map((driver) =>
      driver.subscribe(() => {
        if (--remaining === 0) finished();
      }),
    ),
  );
  const runOnce = async () => {
    remaining = options.subscribers * options.broadcasts;
    const done = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const started = performance.now();
    await (publisher as Driver).broadcast(options.broadcasts);
    await done;
    return (options.subscribers * options.broadcasts) / ((performance.now() - started) / 1000);
  };
  await runOnce(); // warm-up
  // One burst is short: the median of five.
  const values: number[] = [];
  for (let i = 0; i < 5; i++) values.push(await runOnce());
  values.sort((x, y) => x - y);
  for (const driver of [...subscribers, publisher as Driver]) driver.close();
  return { value: values[2] as number };
}

/**
 * Across processes: subscribers split between the instances of `urls`, broadcasts made on
 * the first. Deliveries per second until every subscriber has them all (median of five
 * bursts); p50 and p99 latency from the broadcast's request to its arrival at the
 * subscribers of the other instances, at 100 broadcasts per second; and how many messages
 * an instance with no subscribers received from the broker meanwhile.
 */
async function cluster(): Promise<Record<string, number>> {
  const urls = options.urls ?? [options.url];
  const subscribers = await connect(options.subscribers, urls);
  const [publisher] = (await connect(1, urls.slice(0, 1))) as [Driver];
  const [idle] = options.idleUrl ? ((await connect(1, [options.idleUrl])) as [Driver]) : [];
  const idleBefore = idle ? await idle.relayReceived() : 0;
  let remaining = 0;
  let finished: () => void = () => {};
  /** For latency: when each numbered broadcast was asked for, and the delays seen. */
  const sentAt = new Map<number, number>();
  const delays: number[] = [];
  const LATENCY_BASE = 1_000_000;
  await Promise.all(
    subscribers.map((driver, index) =>
      driver.subscribe((seq) => {
        if (seq >= LATENCY_BASE) {
          // Only the subscribers of the other instances: the delay across processes.
          if (index % urls.length !== 0) delays.push(performance.now() - (sentAt.get(seq) ?? 0));
          return;
        }
        if (--remaining === 0) finished();
      }),
    ),
  );
  const runOnce = async () => {
    remaining = options.subscribers * options.broadcasts;
    const done = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const started = performance.now();
    await publisher.broadcast(options.broadcasts);
    await done;
    return (options.subscribers * options.broadcasts) / ((performance.now() - started) / 1000);
  };
  await runOnce(); // warm-up
  const values: number[] = [];
  for (let i = 0; i < 5; i++) values.push(await runOnce());
  values.sort((x, y) => x - y);

  const count = Math.max(10, Math.round(options.duration * 100));
  for (let i = 0; i < count; i++) {
    const seq = LATENCY_BASE + i;
    sentAt.set(seq, performance.now());
    void publisher.broadcastSeq(seq);
    await sleep(10);
  }
  await sleep(500);
  delays.sort((x, y) => x - y);
  const at = (q: number) =>
    delays[Math.min(delays.length - 1, Math.floor(q * delays.length))] ?? Number.NaN;
  const idleReceived = idle ? (await idle.relayReceived()) - idleBefore : Number.NaN;
  for (const driver of [...subscribers, publisher, ...(idle ? [idle] : [])]) driver.close();
  return { value: values[2] as number, p50: at(0.5), p99: at(0.99), idleReceived };
}

/** A plain WebSocket to the server, open. */
async function openSocket(): Promise<WebSocket> {
  const ws = new WebSocket(options.url);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  return ws;
}

/**
 * How long a client that missed 1,000 broadcasts on a channel with history takes to get
 * them all: from its subscribe with `since` to the last missed frame (median of five).
 */
async function recovery(): Promise<Record<string, number>> {
  const MISSED = 1000;
  const [publisher] = (await connect(1)) as [Driver];
  const times: number[] = [];
  for (let round = 0; round < 6; round++) {
    const away = await openSocket();
    const position = await new Promise<{ offset: number; epoch: string }>((resolve) => {
      away.onmessage = (event) => resolve(JSON.parse(event.data as string));
      away.send(JSON.stringify({ type: "subscribe", channel: "fanout_history" }));
    });
    away.close();
    await publisher.broadcast(MISSED);
    const back = await openSocket();
    const elapsed = await new Promise<number>((resolve, reject) => {
      let received = 0;
      const started = performance.now();
      back.onmessage = (event) => {
        const frame = JSON.parse(event.data as string);
        if (frame.type === "subscribed" && frame.recovered !== true) {
          reject(new Error(`not recovered: ${event.data}`));
        }
        if (frame.type === "data" && ++received === MISSED) resolve(performance.now() - started);
      };
      back.send(
        JSON.stringify({
          type: "subscribe",
          channel: "fanout_history",
          since: { offset: position.offset, epoch: position.epoch },
        }),
      );
    });
    back.close();
    if (round > 0) times.push(elapsed); // the first warms up
  }
  publisher.close();
  times.sort((x, y) => x - y);
  return { ms: times[Math.floor(times.length / 2)] as number };
}

/**
 * A join and leave storm on a channel with presence: `idle / 2` members listening to joins
 * and leaves (at most 1,000), then as many more connections subscribing at once: the time
 * until every member heard every join, then the same for the leaves when they all close;
 * and the frames that took.
 */
async function presence(): Promise<Record<string, number>> {
  const size = Math.min(1000, Math.floor(options.idle / 2));
  const batches = async (count: number) => {
    const sockets: WebSocket[] = [];
    for (let i = 0; i < count; i += 100) {
      sockets.push(
        ...(await Promise.all(Array.from({ length: Math.min(100, count - i) }, openSocket))),
      );
    }
    return sockets;
  };
  let joins = 0;
  let leaves = 0;
  let frames = 0;
  let settle: () => void = () => {};
  let target = 0;
  let phase: "members" | "join" | "leave" = "members";
  const members = await batches(size);
  await Promise.all(
    members.map(
      (ws) =>
        new Promise<void>((subscribed) => {
          ws.onmessage = (event) => {
            const frame = JSON.parse(event.data as string);
            frames++;
            if (frame.type === "subscribed") subscribed();
            else if (frame.type === "join") joins++;
            else if (frame.type === "leave") leaves++;
            const counted = phase === "join" ? joins : phase === "leave" ? leaves : 0;
            if (counted === target) settle();
          };
          ws.send(JSON.stringify({ type: "subscribe", channel: "lobby", presence: true }));
        }),
    ),
  );
  // Joins of the members among themselves are done: count the storm's only.
  await sleep(300);
  joins = 0;
  leaves = 0;
  frames = 0;
  const newcomers = await batches(size);
  target = size * size;
  const joined = new Promise<void>((resolve) => {
    settle = resolve;
  });
  phase = "join";
  let started = performance.now();
  for (const ws of newcomers) ws.send('{"type":"subscribe","channel":"lobby"}');
  await joined;
  const joinMs = performance.now() - started;
  const left = new Promise<void>((resolve) => {
    settle = resolve;
  });
  phase = "leave";
  started = performance.now();
  for (const ws of newcomers) ws.close();
  await left;
  const leaveMs = performance.now() - started;
  for (const ws of members) ws.close();
  return { joinMs, leaveMs, frames, members: size };
}

async function serverMemory(): Promise<{ rss: number; heapUsed: number }> {
  await sleep(300);
  const response = await fetch(`${options.url.replace(/^ws/, "http")}__memory`);
  return (await response.json()) as { rss: number; heapUsed: number };
}

/** Server memory (RSS after a collection) per idle connection, and per subscription. */
async function memory(): Promise<Record<string, number>> {
  const before = await serverMemory();
  const drivers = await connect(options.idle);
  const connected = await serverMemory();
  await Promise.all(drivers.map((driver) => driver.subscribe(() => {})));
  const subscribed = await serverMemory();
  for (const driver of drivers) driver.close();
  return {
    perConnection: (connected.rss - before.rss) / options.idle,
    perConnectionHeap: (connected.heapUsed - before.heapUsed) / options.idle,
    perSubscription: (subscribed.rss - connected.rss) / options.idle,
    perSubscriptionHeap: (subscribed.heapUsed - connected.heapUsed) / options.idle,
  };
}

/**
 * Chunks per second: `streams` streaming answers of `chunks` small chunks each at once, one
 * per connection, until the last one completed (the median of five runs).
 */
async function streams(): Promise<Record<string, number>> {
  const drivers = await connect(options.streams);
  const runOnce = async () => {
    let received = 0;
    const started = performance.now();
    await Promise.all(
      drivers.map(
        (driver) =>
          driver.stream("stream", { count: options.chunks }, () => {
            received++;
          }).done,
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    if (received !== options.streams * options.chunks) {
      throw new Error(`received ${received} chunks of ${options.streams * options.chunks}`);
    }
    return received / seconds;
  };
  await runOnce(); // warm-up
  const values: number[] = [];
  for (let run = 0; run < 5; run++) values.push(await runOnce());
  values.sort((x, y) => x - y);
  for (const driver of drivers) driver.close();
  return { value: values[2] as number };
}

/**
 * Held streams (SocketAPI only): the server's memory per open stream (RSS and heap after a
 * collection), then the time from each one's cancel to its generator's `finally`.
 */
async function held(): Promise<Record<string, number>> {
  const perConnection = 10;
  const drivers = await connect(Math.ceil(options.held / perConnection));
  const before = await serverMemory();
  const open: { cancel(): void }[] = [];
  const firsts: Promise<void>[] = [];
  for (const [i, driver] of drivers.entries()) {
    for (let j = 0; j < perConnection && i * perConnection + j < options.held; j++) {
      let first: () => void = () => {};
      firsts.push(new Promise<void>((resolve) => (first = resolve)));
      open.push(driver.stream("stream_hold", undefined, () => first()));
    }
  }
  await Promise.all(firsts);
  const during = await serverMemory();
  for (const stream of open) stream.cancel();
  await sleep(500);
  // What the server measured (an action that does not stream, called the same way).
  const times = (await (drivers[0] as Driver).stream("stream_stats", undefined, () => {})
    .done) as number[];
  for (const driver of drivers) driver.close();
  const at = (q: number) =>
    times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? Number.NaN;
  return {
    perStream: (during.rss - before.rss) / options.held,
    perStreamHeap: (during.heapUsed - before.heapUsed) / options.held,
    cancelP50: at(0.5),
    cancelP99: at(0.99),
    cancelled: times.length,
  };
}

const scenarios = {
  actions,
  latency,
  fanout,
  memory,
  cluster,
  recovery,
  presence,
  streams,
  held,
};
const result = await scenarios[options.scenario]();
console.log(JSON.stringify(result));
process.exit(0);
