// The benchmark: every subject on every runtime, the same load generator, interleaved
// (A B C A B C ...), medians with min and max, ratios against `raw` on the same runtime in
// the same run.
//
//   npm run bench                        # full run: 3 repetitions, writes bench/RESULTS.md
//   npm run bench -- --quick             # 1 repetition, small sizes, under 90 seconds
//   npm run bench -- --json out.json     # also writes the results as JSON
//   npm run bench -- --render out.json   # writes bench/RESULTS.md again from such a JSON
//   npm run bench -- --storm-only        # the reconnect storms alone (bench/STORM.md)
//   npm run bench -- --skip-storm        # a full run without them
//   npm run bench -- --faults-only       # the network between hosts alone (bench/FAULTS.md)
//   npm run bench -- --skip-faults       # a full run without it
//   npm run bench -- --hundred-thousand-only  # 100,000 connections alone (bench/HUNDRED-THOUSAND.md)
//   npm run bench -- --skip-hundred-thousand  # a full run without them
//   npm run bench -- --wire-only         # compression (and codecs) on the wire alone (bench/WIRE.md)
//   npm run bench -- --skip-wire         # a full run without it
//   npm run bench -- --admin-only        # what the dashboard costs, alone (bench/ADMIN.md)
//   npm run bench -- --skip-admin        # a full run without it
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startRedisCluster } from "../tests/helpers/brokers.ts";
import type { LoadSizes } from "./load.ts";
import { sectionsOf } from "./results-sections.ts";
import { median } from "./stats.ts";

const root = resolve(import.meta.dirname, "..");
const bin = (name: string) => join(root, "node_modules", ".bin", name);

/** The runtimes compared, each against its own raw server. */
const RUNTIMES = ["node", "bun", "deno"] as const;
type Runtime = (typeof RUNTIMES)[number];
const denoServer = (file: string) => [
  bin("deno"),
  "run",
  "--allow-net",
  "--allow-env",
  "--allow-read",
  "--allow-sys",
  "--v8-flags=--expose-gc",
  `bench/servers/${file}`,
];
const nodeServer = (file: string) => [
  process.execPath,
  "--expose-gc",
  "--import",
  "tsx",
  `bench/servers/${file}`,
];

interface Subject {
  runtime: Runtime;
  subject: string;
  command: string[];
  env?: Record<string, string>;
  protocol: "socketapi" | "socketio";
}

const subjects: Subject[] = [
  {
    runtime: "node",
    subject: "raw",
    command: nodeServer("node-raw.ts"),
    env: { BENCH_CORK: "1" },
    protocol: "socketapi",
  },
  {
    runtime: "node",
    subject: "raw-naive",
    command: nodeServer("node-raw.ts"),
    protocol: "socketapi",
  },
  {
    runtime: "node",
    subject: "socketapi",
    command: nodeServer("node-socketapi.ts"),
    protocol: "socketapi",
  },
  {
    runtime: "node",
    subject: "socketapi + otel metrics",
    command: nodeServer("node-socketapi.ts"),
    env: { BENCH_OTEL: "metrics" },
    protocol: "socketapi",
  },
  {
    runtime: "node",
    subject: "socketapi + otel traces",
    command: nodeServer("node-socketapi.ts"),
    env: { BENCH_OTEL: "traces" },
    protocol: "socketapi",
  },
  {
    runtime: "node",
    subject: "socket.io",
    command: nodeServer("node-socketio.ts"),
    protocol: "socketio",
  },
  {
    runtime: "node",
    subject: "crossws",
    command: nodeServer("node-crossws.ts"),
    protocol: "socketapi",
  },
  {
    runtime: "bun",
    subject: "raw",
    command: [bin("bun"), "bench/servers/bun-raw.ts"],
    protocol: "socketapi",
  },
  {
    runtime: "bun",
    subject: "socketapi",
    command: [bin("bun"), "bench/servers/bun-socketapi.ts"],
    protocol: "socketapi",
  },
  {
    runtime: "bun",
    subject: "crossws",
    command: [bin("bun"), "bench/servers/bun-crossws.ts"],
    protocol: "socketapi",
  },
  {
    runtime: "deno",
    subject: "raw",
    command: denoServer("deno-raw.ts"),
    protocol: "socketapi",
  },

  {
    runtime: "deno",
    subject: "socketapi",
    command: denoServer("deno-socketapi.ts"),
    protocol: "socketapi",
  },
];

/**
 * Across processes: three instances of a subject (subscribers split between the first two,
 * broadcasts made on the first, the third with no subscriber) and the broker they share.
 */
interface ClusterSubject {
  subject: string;
  /** `redis-cluster`: three primaries and three replicas, joined by `redis-cli --cluster create`. */
  broker: "redis" | "nats" | "redis-cluster";
  command: string[];
  protocol: "socketapi" | "socketio";
}

const clusterSubjects: ClusterSubject[] = [
  {
    subject: "socketapi over redis",
    broker: "redis",
    command: nodeServer("node-socketapi-relay.ts"),
    protocol: "socketapi",
  },
  {
    subject: "socketapi over nats",
    broker: "nats",
    command: nodeServer("node-socketapi-relay.ts"),
    protocol: "socketapi",
  },
  {
    subject: "socket.io over redis",
    broker: "redis",
    command: nodeServer("node-socketio-redis.ts"),
    protocol: "socketio",
  },
  {
    subject: "socketapi over redis cluster",
    broker: "redis-cluster",
    command: nodeServer("node-socketapi-relay.ts"),
    protocol: "socketapi",
  },
  {
    subject: "socket.io over redis cluster (sharded adapter)",
    broker: "redis-cluster",
    command: nodeServer("node-socketio-redis.ts"),
    protocol: "socketio",
  },
];

interface Sizes extends LoadSizes {
  repetitions: number;
  /** The scale scenario: connections to one server, spread over SCALE_WORKERS processes. */
  scale: number;
  /** In how many of the repetitions the scale scenario runs (it takes about 17 s a subject). */
  scaleRepetitions: number;
}

const SIZES: Record<"full" | "quick" | "smoke", Sizes> = {
  full: {
    repetitions: 5,
    connections: 50,
    inflight: 16,
    warmup: 1,
    duration: 3,
    rate: 5000,
    subscribers: 500,
    broadcasts: 200,
    idle: 2000,
    scale: 19_000,
    scaleRepetitions: 3,
    streams: 100,
    chunks: 1000,
    held: 1000,
  },
  quick: {
    repetitions: 1,
    connections: 50,
    inflight: 16,
    warmup: 0.5,
    duration: 1.5,
    rate: 5000,
    subscribers: 200,
    broadcasts: 100,
    idle: 500,
    scale: 5_000,
    scaleRepetitions: 1,
    streams: 100,
    chunks: 200,
    held: 200,
  },
  smoke: {
    repetitions: 1,
    connections: 4,
    inflight: 2,
    warmup: 0.1,
    duration: 0.3,
    rate: 200,
    subscribers: 10,
    broadcasts: 10,
    idle: 20,
    scale: 200,
    scaleRepetitions: 1,
    streams: 4,
    chunks: 20,
    held: 10,
  },
};

/** What each scenario reports, and in which unit. */
const METRICS: {
  scenario: string;
  load: string;
  key: string;
  unit: string;
  higherIsBetter: boolean;
}[] = [
  {
    scenario: "actions",
    load: "actions",
    key: "value",
    unit: "round trips/s",
    higherIsBetter: true,
  },
  { scenario: "latency p50", load: "latency", key: "p50", unit: "ms", higherIsBetter: false },
  { scenario: "latency p99", load: "latency", key: "p99", unit: "ms", higherIsBetter: false },
  { scenario: "fan-out", load: "fanout", key: "value", unit: "deliveries/s", higherIsBetter: true },
  {
    scenario: "memory per connection",
    load: "memory",
    key: "perConnection",
    unit: "bytes",
    higherIsBetter: false,
  },
  {
    scenario: "heap per connection",
    load: "memory",
    key: "perConnectionHeap",
    unit: "bytes",
    higherIsBetter: false,
  },
  {
    scenario: "memory per subscription",
    load: "memory",
    key: "perSubscription",
    unit: "bytes",
    higherIsBetter: false,
  },
  {
    scenario: "heap per subscription",
    load: "memory",
    key: "perSubscriptionHeap",
    unit: "bytes",
    higherIsBetter: false,
  },
];

/** What the history scenarios report, for SocketAPI only (the others have no history). */
const HISTORY_METRICS: { scenario: string; load: string; key: string; unit: string }[] = [
  { scenario: "fan-out with history", load: "fanout", key: "value", unit: "deliveries/s" },
  { scenario: "recovery of 1,000 missed broadcasts", load: "recovery", key: "ms", unit: "ms" },
];

/** Streaming answers: chunks per second, for SocketAPI and the raw server sending the same frames. */
const STREAM_METRIC = { scenario: "stream chunks", key: "value", unit: "chunks/s" };

/** Held streams, for SocketAPI only: the memory of an open stream, and cancel to finally. */
const HELD_METRICS: { scenario: string; key: string; unit: string }[] = [
  { scenario: "memory per open stream", key: "perStream", unit: "bytes" },
  { scenario: "heap per open stream", key: "perStreamHeap", unit: "bytes" },
  { scenario: "stream cancel to finally p50", key: "cancelP50", unit: "ms" },
  { scenario: "stream cancel to finally p99", key: "cancelP99", unit: "ms" },
];

/** The join/leave storm, for SocketAPI only: one run gives all three. */
const PRESENCE_METRICS: { scenario: string; key: string; unit: string }[] = [
  { scenario: "presence: all joins heard", key: "joinMs", unit: "ms" },
  { scenario: "presence: all leaves heard", key: "leaveMs", unit: "ms" },
  { scenario: "presence: frames sent in the storm", key: "frames", unit: "frames" },
];

/** What the cross-process scenario reports. */
const CLUSTER_METRICS: { scenario: string; key: string; unit: string }[] = [
  { scenario: "fan-out across processes", key: "value", unit: "deliveries/s" },
  { scenario: "latency across processes p50", key: "p50", unit: "ms" },
  { scenario: "latency across processes p99", key: "p99", unit: "ms" },
  {
    scenario: "messages to an instance without subscribers",
    key: "idleReceived",
    unit: "messages",
  },
];

/** Debian's broker binaries, where the packages put them. */
const BROKERS = {
  redis: ["/usr/bin/redis-server", "/usr/local/bin/redis-server"],
  nats: ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"],
};

/** A broker the bench started: where it is, and how it is stopped. */
interface StartedBroker {
  url: string;
  stop(): Promise<void>;
}

/**
 * A Redis Cluster of three primaries (a replica each) on free ports, as the tests start it,
 * on the servers' core; its URL is `redis-cluster://` and its primaries.
 */
async function startClusterBroker(): Promise<StartedBroker> {
  // On the servers' core, as every broker of the bench.
  const cluster = await startRedisCluster({ wrap: (command) => pinned(0, command) });
  return {
    url: `redis-cluster://${cluster.addresses.slice(0, 3).join(",")}`,
    stop: () => cluster.kill(),
  };
}

/** Starts a broker of its own on a free port, on the servers' core; its URL and process. */
async function startBroker(kind: "redis" | "nats"): Promise<StartedBroker> {
  const binary = BROKERS[kind].find((path) => existsSync(path));
  if (!binary) throw new Error(`${kind} is not installed: apt-get install ${kind}-server`);
  const port = await freePort();
  const args =
    kind === "redis"
      ? ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
      : ["-a", "127.0.0.1", "-p", String(port)];
  const [command, ...rest] = pinned(0, [binary, ...args]) as [string, ...string[]];
  const child = spawn(command, rest, { stdio: "ignore" });
  for (let attempt = 0; ; attempt++) {
    const answering = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (answering) break;
    if (attempt > 200) throw new Error(`${kind} did not start`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    url: `${kind}://127.0.0.1:${port}`,
    async stop() {
      child.kill("SIGKILL");
      if (child.exitCode === null && child.signalCode === null) await once(child, "exit");
    },
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

/**
 * With two cores or more and `taskset` at hand, the server runs on core 0 and the load
 * generator on core 1, so that they do not take turns on the same core.
 */
const pinning = cpus().length >= 2 && existsSync("/usr/bin/taskset");
const pinned = (core: number, command: string[]): string[] =>
  pinning ? ["/usr/bin/taskset", "-c", String(core), ...command] : command;

async function startSubject(
  subject: Pick<Subject, "command" | "env" | "subject"> & { runtime?: string },
): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const [command, ...args] = pinned(0, subject.command) as [string, ...string[]];
  const child = spawn(command, args, {
    cwd: root,
    env: { ...process.env, ...subject.env, PORT: String(port) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(
      () => fail(new Error(`${subject.runtime ?? "node"} ${subject.subject} did not start`)),
      20_000,
    );
    child.stdout?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("listening at")) {
        clearTimeout(timer);
        ready();
      }
    });
    child.once("exit", (code) => fail(new Error(`${subject.subject} exited with ${code}`)));
  });
  return { child, url: `ws://127.0.0.1:${port}/` };
}

async function runLoad(options: Record<string, unknown>): Promise<Record<string, number>> {
  const [command, ...args] = pinned(1, [bin("bun"), "bench/load.ts", JSON.stringify(options)]) as [
    string,
    ...string[],
  ];
  const child = spawn(command, args, {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk;
  });
  const [code] = await once(child, "exit");
  if (code !== 0) throw new Error(`load generator exited with ${code}: ${output}`);
  return JSON.parse(output.trim().split("\n").at(-1) as string);
}

/** One run of a cross-process subject: its broker, three instances, the load. */
async function runCluster(subject: ClusterSubject, sizes: Sizes): Promise<Record<string, number>> {
  const broker =
    subject.broker === "redis-cluster"
      ? await startClusterBroker()
      : await startBroker(subject.broker);
  const instances: ChildProcess[] = [];
  try {
    const urls: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { child, url } = await startSubject({
        subject: subject.subject,
        command: subject.command,
        env: { RELAY_URL: broker.url },
      });
      instances.push(child);
      urls.push(url);
    }
    return await runLoad({
      ...sizes,
      scenario: "cluster",
      url: urls[0],
      urls: urls.slice(0, 2),
      idleUrl: urls[2],
      protocol: subject.protocol,
    });
  } finally {
    for (const child of instances) {
      child.kill("SIGKILL");
      if (child.exitCode === null && child.signalCode === null) await once(child, "exit");
    }
    await broker.stop();
  }
}

/**
 * The scale scenario: `sizes.scale` connections to one server, held by SCALE_WORKERS load
 * generator processes (one process may not hold 19,000: the limit of open files per
 * process is 20,000 here and cannot be raised).
 */
const SCALE_WORKERS = 4;

/** What the scale scenario reports, for raw, SocketAPI and Socket.IO on each runtime. */
const SCALE_METRICS: {
  scenario: string;
  key: string;
  unit: string;
  higherIsBetter: boolean;
}[] = [
  { scenario: "connect rate", key: "connectRate", unit: "connections/s", higherIsBetter: true },
  {
    scenario: "memory per connection at scale",
    key: "perConnection",
    unit: "bytes",
    higherIsBetter: false,
  },
  {
    scenario: "memory per subscribed connection",
    key: "perSubscribed",
    unit: "bytes",
    higherIsBetter: false,
  },
  {
    scenario: "heap per subscribed connection",
    key: "perSubscribedHeap",
    unit: "bytes",
    higherIsBetter: false,
  },
  {
    scenario: "broadcast to all, until the last delivery",
    key: "broadcastMs",
    unit: "ms",
    higherIsBetter: false,
  },
  {
    scenario: "actions while all are connected",
    key: "actions",
    unit: "round trips/s",
    higherIsBetter: true,
  },
];

/** The subjects of the scale scenario: raw, SocketAPI and Socket.IO, on each runtime. */
const scaleSubjects = () =>
  chosen(subjects).filter((s) => ["raw", "socketapi", "socket.io"].includes(s.subject));

/** The subjects `--only` names ("bun raw,bun socketapi"), or all of them. */
let only: string[] | undefined;
const chosen = <T extends { subject: string; runtime?: string }>(list: T[]): T[] =>
  only ? list.filter((s) => only?.includes(`${s.runtime ?? "node"} ${s.subject}`)) : list;

/** A load generator process of the scale scenario, and its answers awaited by key. */
function startScaleWorker(url: string, protocol: string, share: number) {
  const [command, ...args] = pinned(1, [
    bin("bun"),
    "bench/scale-worker.ts",
    JSON.stringify({ url, protocol, share }),
  ]) as [string, ...string[]];
  const child = spawn(command, args, { cwd: root, stdio: ["pipe", "pipe", "inherit"] });
  const received: Record<string, number>[] = [];
  const waiting: {
    key: string;
    resolve: (message: Record<string, number>) => void;
    reject: (error: Error) => void;
  }[] = [];
  let buffered = "";
  let exited: Error | undefined;
  // "close", not "exit": the last answers may still be in its stdout when it exits.
  child.once("close", (code) => {
    exited = new Error(`scale worker exited with ${code}`);
    for (const waiter of waiting.splice(0)) waiter.reject(exited);
  });
  child.stdout?.on("data", (chunk: Buffer) => {
    buffered += chunk;
    let newline = buffered.indexOf("\n");
    while (newline >= 0) {
      const message = JSON.parse(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
      const waiter = waiting.findIndex((w) => w.key in message);
      if (waiter >= 0) waiting.splice(waiter, 1)[0]?.resolve(message);
      else received.push(message);
      newline = buffered.indexOf("\n");
    }
  });
  return {
    child,
    send: (line: string) => child.stdin?.write(`${line}\n`),
    /** The next answer with `key`, within two minutes. */
    next: (key: string) =>
      new Promise<Record<string, number>>((resolve, reject) => {
        const index = received.findIndex((message) => key in message);
        if (index >= 0) return resolve(received.splice(index, 1)[0] as Record<string, number>);
        if (exited) return reject(exited);
        const timer = setTimeout(() => reject(new Error(`scale worker: no ${key}`)), 120_000);
        waiting.push({
          key,
          resolve: (message) => {
            clearTimeout(timer);
            resolve(message);
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        });
      }),
  };
}

/** The server's memory after a full collection, from its `/__memory` endpoint. */
async function serverMemory(url: string): Promise<{ rss: number; heapUsed: number }> {
  await new Promise((resolve) => setTimeout(resolve, 300));
  const response = await fetch(`${url.replace(/^ws/, "http")}__memory`);
  return (await response.json()) as { rss: number; heapUsed: number };
}

/**
 * One run of the scale scenario on one subject: the connect rate of `sizes.scale`
 * connections opened at once by the workers, memory per connection and per subscribed
 * connection, the time from a broadcast's request to its delivery to the last of them
 * (median of five, after one warm-up), and round trips per second on `sizes.connections`
 * of them while all are connected.
 */
async function runScaleScenario(subject: Subject, sizes: Sizes): Promise<Record<string, number>> {
  const { child, url } = await startSubject(subject);
  const share = Math.ceil(sizes.scale / SCALE_WORKERS);
  const workers = Array.from({ length: SCALE_WORKERS }, (_, i) =>
    startScaleWorker(url, subject.protocol, Math.min(share, sizes.scale - i * share)),
  );
  const publisher = workers[0] as (typeof workers)[number];
  const all = async (line: string, key: string) => {
    for (const worker of workers) worker.send(line);
    return Promise.all(workers.map((worker) => worker.next(key)));
  };
  try {
    const before = await serverMemory(url);
    const connected = await all("connect", "connected");
    const connectMs =
      Math.max(...connected.map((m) => m.finished as number)) -
      Math.min(...connected.map((m) => m.started as number));
    const afterConnect = await serverMemory(url);
    await all("subscribe", "subscribed");
    const afterSubscribe = await serverMemory(url);
    const broadcasts: number[] = [];
    for (let round = 0; round < 6; round++) {
      await all("arm", "armed");
      const delivered = workers.map((worker) => worker.next("delivered"));
      publisher.send("publish");
      const { published } = (await publisher.next("published")) as { published: number };
      const last = Math.max(...(await Promise.all(delivered)).map((m) => m.delivered as number));
      if (round > 0) broadcasts.push(last - published);
    }
    const perWorker = Math.max(1, Math.round(sizes.connections / SCALE_WORKERS));
    const answered = await all(
      `actions ${perWorker} ${sizes.inflight} ${sizes.duration}`,
      "answered",
    );
    await all("close", "closed");
    return {
      connectRate: sizes.scale / (connectMs / 1000),
      perConnection: (afterConnect.rss - before.rss) / sizes.scale,
      perSubscribed: (afterSubscribe.rss - before.rss) / sizes.scale,
      perSubscribedHeap: (afterSubscribe.heapUsed - before.heapUsed) / sizes.scale,
      broadcastMs: median(broadcasts),
      actions: answered.reduce((sum, m) => sum + (m.answered as number) / (m.seconds as number), 0),
    };
  } finally {
    for (const process of [...workers.map((w) => w.child), child]) {
      process.kill("SIGKILL");
      if (process.exitCode === null && process.signalCode === null) await once(process, "exit");
    }
  }
}

let lastResults: BenchResult[] = [];

export interface BenchResult {
  scenario: string;
  runtime: string;
  subject: string;
  unit: string;
  median: number;
  min: number;
  max: number;
  runs: number[];
}

/** A scenario's runs for one subject, as the table shows them: median, min, max. */
function summary(
  metric: { scenario: string; unit: string },
  runtime: string,
  subject: string,
  runs: Map<string, number[]>,
): BenchResult {
  const values = runs.get(`${metric.scenario}|${runtime}|${subject}`) ?? [];
  return {
    scenario: metric.scenario,
    runtime,
    subject,
    unit: metric.unit,
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    runs: values,
  };
}

function format(value: number, unit: string): string {
  if (unit === "ms") return value.toFixed(2);
  if (unit === "bytes") return `${Math.round(value).toLocaleString("en-US")}`;
  return Math.round(value).toLocaleString("en-US");
}

/**
 * The table: per scenario of `metrics` and runtime, each subject's median (min–max) and its
 * ratio to raw (for memory: bytes above raw).
 */
function table(
  results: BenchResult[],
  metrics: readonly { scenario: string; unit: string }[] = METRICS,
): string {
  const lines = [
    "| scenario | runtime | subject | median | min – max | vs raw |",
    "| --- | --- | --- | ---: | ---: | ---: |",
  ];
  for (const metric of metrics) {
    for (const runtime of RUNTIMES) {
      const rows = results.filter((r) => r.scenario === metric.scenario && r.runtime === runtime);
      const raw = rows.find((r) => r.subject === "raw");
      for (const row of rows) {
        let ratio = "";
        if (raw && row !== raw) {
          ratio =
            metric.unit === "bytes"
              ? `${format(row.median - raw.median, "bytes")} B`
              : `${(row.median / raw.median).toFixed(2)}x`;
        }
        lines.push(
          `| ${metric.scenario} (${metric.unit}) | ${runtime} | ${row.subject} | ${format(row.median, metric.unit)} | ${format(row.min, metric.unit)} – ${format(row.max, metric.unit)} | ${ratio} |`,
        );
      }
    }
  }
  return lines.join("\n");
}

/**
 * The cross-process table: per scenario, each subject's median (min–max), with fan-out
 * against Socket.IO's Redis adapter and against one SocketAPI process (fan-out on Node).
 */
function clusterTable(results: BenchResult[]): string {
  const lines = [
    "| scenario | subject | median | min – max | vs socket.io over the same broker | vs one process |",
    "| --- | --- | ---: | ---: | ---: | ---: |",
  ];
  const single = results.find(
    (r) => r.scenario === "fan-out" && r.runtime === "node" && r.subject === "socketapi",
  );
  for (const metric of CLUSTER_METRICS) {
    const rows = results.filter((r) => r.scenario === metric.scenario);
    for (const row of rows) {
      // Over a Redis Cluster, against Socket.IO's sharded adapter on the same cluster.
      const peer = row.subject.includes("redis cluster")
        ? "socket.io over redis cluster (sharded adapter)"
        : "socket.io over redis";
      const socketio = rows.find((r) => r.subject === peer);
      const fanout = metric.scenario === "fan-out across processes";
      const vsSocketio =
        fanout && socketio && row !== socketio
          ? `${(row.median / socketio.median).toFixed(2)}x`
          : "";
      const vsSingle = fanout && single ? `${(row.median / single.median).toFixed(2)}x` : "";
      lines.push(
        `| ${metric.scenario} (${metric.unit}) | ${row.subject} | ${format(row.median, metric.unit)} | ${format(row.min, metric.unit)} – ${format(row.max, metric.unit)} | ${vsSocketio} | ${vsSingle} |`,
      );
    }
  }
  return lines.join("\n");
}

/** The scale table: raw, SocketAPI and (on Node) Socket.IO at `sizes.scale` connections. */
const scaleTable = (results: BenchResult[]) => table(results, SCALE_METRICS);

/**
 * On paper, for a machine whose open-file limit is raised: what a million subscribed
 * connections would take in RSS (memory per subscribed connection × 1,000,000), how many
 * the memory of this machine would hold, and a broadcast to all of them if its time grows
 * linearly from the measured size.
 */
function projectionTable(results: BenchResult[], scale: number, memoryGiB: number): string {
  const lines = [
    `| runtime | subject | RSS for 1,000,000 connections | connections in ${memoryGiB} GiB | broadcast to 1,000,000 |`,
    "| --- | --- | ---: | ---: | ---: |",
  ];
  const get = (scenario: string, runtime: string, subject: string) =>
    results.find((r) => r.scenario === scenario && r.runtime === runtime && r.subject === subject)
      ?.median;
  for (const subject of scaleSubjects()) {
    const perConnection = get("memory per subscribed connection", subject.runtime, subject.subject);
    const broadcastMs = get(
      "broadcast to all, until the last delivery",
      subject.runtime,
      subject.subject,
    );
    if (perConnection === undefined || broadcastMs === undefined) continue;
    const gib = (perConnection * 1_000_000) / 1024 ** 3;
    const fits = Math.floor((memoryGiB * 1024 ** 3) / perConnection);
    lines.push(
      `| ${subject.runtime} | ${subject.subject} | ${gib.toFixed(1)} GiB | ${fits.toLocaleString("en-US")} | ${((broadcastMs * 1_000_000) / scale / 1000).toFixed(1)} s |`,
    );
  }
  return lines.join("\n");
}

/** The history table: fan-out with history against the same fan-out without, and recovery. */
function historyTable(results: BenchResult[]): string {
  const lines = [
    "| scenario | runtime | median | min – max | vs without history |",
    "| --- | --- | ---: | ---: | ---: |",
  ];
  for (const metric of HISTORY_METRICS) {
    for (const runtime of RUNTIMES) {
      const row = results.find(
        (r) => r.scenario === metric.scenario && r.runtime === runtime && r.subject === "socketapi",
      );
      if (!row) continue;
      const without = results.find(
        (r) => r.scenario === "fan-out" && r.runtime === runtime && r.subject === "socketapi",
      );
      const ratio =
        metric.load === "fanout" && without ? `${(row.median / without.median).toFixed(2)}x` : "";
      lines.push(
        `| ${metric.scenario} (${metric.unit}) | ${runtime} | ${format(row.median, metric.unit)} | ${format(row.min, metric.unit)} – ${format(row.max, metric.unit)} | ${ratio} |`,
      );
    }
  }
  return lines.join("\n");
}

/** The streams table: chunks per second against raw, then what an open stream holds. */
function streamTable(results: BenchResult[]): string {
  const lines = [
    "| scenario | runtime | subject | median | min – max | vs raw |",
    "| --- | --- | --- | ---: | ---: | ---: |",
  ];
  const row = (scenario: string, runtime: string, subject: string) =>
    results.find((r) => r.scenario === scenario && r.runtime === runtime && r.subject === subject);
  for (const metric of [STREAM_METRIC, ...HELD_METRICS]) {
    for (const runtime of RUNTIMES) {
      for (const subject of metric === STREAM_METRIC ? ["raw", "socketapi"] : ["socketapi"]) {
        const found = row(metric.scenario, runtime, subject);
        if (!found) continue;
        const raw = row(metric.scenario, runtime, "raw");
        const ratio =
          metric === STREAM_METRIC && subject !== "raw" && raw
            ? `${(found.median / raw.median).toFixed(2)}x`
            : "";
        lines.push(
          `| ${metric.scenario} (${metric.unit}) | ${runtime} | ${subject} | ${format(found.median, metric.unit)} | ${format(found.min, metric.unit)} – ${format(found.max, metric.unit)} | ${ratio} |`,
        );
      }
    }
  }
  return lines.join("\n");
}

/** The presence table: the join/leave storm on Node and Bun. */
function presenceTable(results: BenchResult[]): string {
  const lines = ["| scenario | runtime | median | min – max |", "| --- | --- | ---: | ---: |"];
  for (const metric of PRESENCE_METRICS) {
    for (const runtime of RUNTIMES) {
      const row = results.find(
        (r) => r.scenario === metric.scenario && r.runtime === runtime && r.subject === "socketapi",
      );
      if (!row) continue;
      lines.push(
        `| ${metric.scenario} (${metric.unit}) | ${runtime} | ${format(row.median, metric.unit)} | ${format(row.min, metric.unit)} – ${format(row.max, metric.unit)} |`,
      );
    }
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      smoke: { type: "boolean", default: false },
      json: { type: "string" },
      results: { type: "string" },
      render: { type: "string" },
      "scale-only": { type: "boolean", default: false },
      "storm-only": { type: "boolean", default: false },
      "skip-storm": { type: "boolean", default: false },
      "faults-only": { type: "boolean", default: false },
      "skip-faults": { type: "boolean", default: false },
      "wire-only": { type: "boolean", default: false },
      "skip-wire": { type: "boolean", default: false },
      "admin-only": { type: "boolean", default: false },
      "skip-admin": { type: "boolean", default: false },
      "hundred-thousand-only": { type: "boolean", default: false },
      "skip-hundred-thousand": { type: "boolean", default: false },
      repetitions: { type: "string" },
      only: { type: "string" },
    },
  });
  if (values.render) {
    // Writes RESULTS.md again from a run's JSON, without running anything.
    const { machine, results } = JSON.parse(await readFile(values.render, "utf8"));
    lastResults = results;
    await writeResults(
      values.results,
      resultsPage(machine, SIZES[machine.mode as keyof typeof SIZES], table(results)),
    );
    return;
  }
  const mode = values.smoke ? "smoke" : values.quick ? "quick" : "full";
  if (values["storm-only"]) {
    await runStorm(mode);
    return;
  }
  if (values["wire-only"]) {
    await runWire(mode);
    return;
  }
  if (values["admin-only"]) {
    await runLongScenario("bench/admin.ts", mode, "ADMIN.md");
    return;
  }
  if (values["faults-only"]) {
    await runFaults(mode);
    return;
  }
  if (values["hundred-thousand-only"]) {
    await runHundredThousand(mode);
    return;
  }
  const sizes = {
    ...SIZES[mode],
    ...(values.repetitions ? { repetitions: Number(values.repetitions) } : {}),
  };
  const runs = new Map<string, number[]>();
  const started = Date.now();
  const scaleOnly = values["scale-only"];
  only = values.only?.split(",").map((name) => name.trim());
  for (let repetition = 0; repetition < sizes.repetitions; repetition++) {
    for (const subject of scaleOnly ? [] : chosen(subjects)) {
      const { child, url } = await startSubject(subject);
      try {
        for (const load of ["memory", "actions", "latency", "fanout"]) {
          const result = await runLoad({
            ...sizes,
            scenario: load,
            url,
            protocol: subject.protocol,
          });
          for (const metric of METRICS.filter((m) => m.load === load)) {
            const key = `${metric.scenario}|${subject.runtime}|${subject.subject}`;
            runs.set(key, [...(runs.get(key) ?? []), result[metric.key] as number]);
          }
        }
        // Streaming answers, against the raw server writing the same frames: before the
        // scenarios only SocketAPI runs, so that both servers have served the same load.
        if (subject.subject === "socketapi" || subject.subject === "raw") {
          const result = await runLoad({
            ...sizes,
            scenario: "streams",
            url,
            protocol: subject.protocol,
          });
          const key = `${STREAM_METRIC.scenario}|${subject.runtime}|${subject.subject}`;
          runs.set(key, [...(runs.get(key) ?? []), result[STREAM_METRIC.key] as number]);
        }
        // The same fan-out on a channel with history, and a recovery, on the same server.
        if (subject.subject === "socketapi") {
          for (const metric of HISTORY_METRICS) {
            const result = await runLoad({
              ...sizes,
              scenario: metric.load,
              url,
              protocol: subject.protocol,
              history: true,
            });
            const key = `${metric.scenario}|${subject.runtime}|socketapi`;
            runs.set(key, [...(runs.get(key) ?? []), result[metric.key] as number]);
          }
          const storm = await runLoad({
            ...sizes,
            scenario: "presence",
            url,
            protocol: subject.protocol,
          });
          for (const metric of PRESENCE_METRICS) {
            const key = `${metric.scenario}|${subject.runtime}|socketapi`;
            runs.set(key, [...(runs.get(key) ?? []), storm[metric.key] as number]);
          }
          const held = await runLoad({
            ...sizes,
            scenario: "held",
            url,
            protocol: subject.protocol,
          });
          for (const metric of HELD_METRICS) {
            const key = `${metric.scenario}|${subject.runtime}|socketapi`;
            runs.set(key, [...(runs.get(key) ?? []), held[metric.key] as number]);
          }
        }
      } finally {
        child.kill("SIGKILL");
        await once(child, "exit");
      }
      process.stderr.write(
        `  ${subject.runtime} ${subject.subject}: repetition ${repetition + 1} done\n`,
      );
    }
    for (const subject of scaleOnly ? [] : chosen(clusterSubjects)) {
      const result = await runCluster(subject, sizes);
      for (const metric of CLUSTER_METRICS) {
        const key = `${metric.scenario}|node|${subject.subject}`;
        runs.set(key, [...(runs.get(key) ?? []), result[metric.key] as number]);
      }
      process.stderr.write(`  ${subject.subject}: repetition ${repetition + 1} done\n`);
    }
    for (const subject of repetition < sizes.scaleRepetitions ? scaleSubjects() : []) {
      const result = await runScaleScenario(subject, sizes);
      for (const metric of SCALE_METRICS) {
        const key = `${metric.scenario}|${subject.runtime}|${subject.subject}`;
        runs.set(key, [...(runs.get(key) ?? []), result[metric.key] as number]);
      }
      process.stderr.write(
        `  ${subject.runtime} ${subject.subject} at ${sizes.scale}: repetition ${repetition + 1} done\n`,
      );
    }
  }
  // Only what ran: every scenario's key has at least one run.
  const results = [
    ...SCALE_METRICS.flatMap((metric) =>
      scaleSubjects().map((subject) => summary(metric, subject.runtime, subject.subject, runs)),
    ),
    ...CLUSTER_METRICS.flatMap((metric) =>
      clusterSubjects.map((subject) => summary(metric, "node", subject.subject, runs)),
    ),
    ...[STREAM_METRIC].flatMap((metric) =>
      subjects
        .filter((s) => s.subject === "socketapi" || s.subject === "raw")
        .map((subject) => summary(metric, subject.runtime, subject.subject, runs)),
    ),
    ...[...HISTORY_METRICS, ...PRESENCE_METRICS, ...HELD_METRICS].flatMap((metric) =>
      subjects
        .filter((s) => s.subject === "socketapi")
        .map((subject) => summary(metric, subject.runtime, "socketapi", runs)),
    ),
    ...METRICS.flatMap((metric) =>
      subjects.map((subject) => summary(metric, subject.runtime, subject.subject, runs)),
    ),
  ].filter((result) => result.runs.length > 0);
  const cpu = cpus();
  const machine = {
    cpus: cpu.length,
    cpu: cpu[0]?.model ?? "unknown",
    memory: `${Math.round(totalmem() / 1024 ** 3)} GiB`,
    node: process.version,
    bun: await new Promise<string>((done) => {
      const child = spawn(bin("bun"), ["--version"]);
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk;
      });
      child.on("exit", () => done(out.trim()));
    }),
    loadGenerator:
      "Bun's WebSocket client (socket.io-client under Bun for Socket.IO), in its own process",
    date: new Date().toISOString(),
    mode,
    seconds: Math.round((Date.now() - started) / 1000),
  };
  lastResults = results;
  const rendered = table(results);
  const memoryGiB = Math.round(totalmem() / 1024 ** 3);
  if (!scaleOnly) {
    console.log(rendered);
    console.log(clusterTable(results));
    console.log(historyTable(results));
    console.log(presenceTable(results));
    console.log(streamTable(results));
  }
  console.log(scaleTable(results));
  console.log(projectionTable(results, sizes.scale, memoryGiB));
  if (values.json)
    await writeFile(values.json, `${JSON.stringify({ machine, results }, null, 2)}\n`);
  if ((mode === "full" && !scaleOnly) || values.results) {
    await writeResults(values.results, resultsPage(machine, sizes, rendered));
  }
  // The reconnect storms (bench/STORM.md), after the rest: they take about ten minutes.
  if (mode === "full" && !scaleOnly && !values["skip-storm"] && !only) await runStorm(mode);
  // The network between hosts (bench/FAULTS.md), where namespaces can be made: about 7 minutes.
  if (mode === "full" && !scaleOnly && !values["skip-faults"] && !only) await runFaults(mode);
  if (mode === "full" && !scaleOnly && !values["skip-wire"] && !only) await runWire(mode);
  if (mode === "full" && !scaleOnly && !values["skip-admin"] && !only) {
    await runLongScenario("bench/admin.ts", mode, "ADMIN.md");
  }
  // 100,000 connections (bench/HUNDRED-THOUSAND.md): about five minutes.
  if (mode === "full" && !scaleOnly && !values["skip-hundred-thousand"] && !only) {
    await runHundredThousand(mode);
  }
}

/**
 * bench/hundred-thousand/run.ts in its own process: 100,000 connections over 8 workers in a
 * full run, 5,000 over 2 in a quick one (written to bench/HUNDRED-THOUSAND.md only in a
 * full run).
 */
async function runHundredThousand(mode: "full" | "quick" | "smoke"): Promise<void> {
  const args = ["--import", "tsx", "bench/hundred-thousand/run.ts"];
  if (mode !== "full") {
    const connections = mode === "quick" ? "5000" : "200";
    args.push("--connections", connections, "--workers", "2", "--processes", "2");
    args.push("--results", join(tmpdir(), "HUNDRED-THOUSAND.md"));
  }
  const child = spawn(process.execPath, args, { cwd: root, stdio: "inherit" });
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`bench/hundred-thousand/run.ts exited with ${code}`);
}

/**
 * Writes the results page to `file`, or to bench/RESULTS.md keeping the long scenarios'
 * sections it has (bench/results-sections.ts).
 */
async function writeResults(file: string | undefined, page: string): Promise<void> {
  if (file) return writeFile(file, page);
  const path = join(root, "bench", "RESULTS.md");
  const kept = existsSync(path) ? sectionsOf(await readFile(path, "utf8")) : "";
  await writeFile(path, kept ? `${page.trimEnd()}\n\n${kept}` : page);
}

/**
 * bench/wire.ts in its own process: three repetitions in a full run, one short one in a
 * quick run (written to bench/WIRE.md only in a full run).
 */
async function runWire(mode: "full" | "quick" | "smoke"): Promise<void> {
  await runLongScenario("bench/wire.ts", mode, "WIRE.md");
}

/**
 * bench/faults.ts in its own process: three repetitions in a full run, one short one in a
 * quick run (written to bench/FAULTS.md only in a full run).
 */
async function runFaults(mode: "full" | "quick" | "smoke"): Promise<void> {
  await runLongScenario("bench/faults.ts", mode, "FAULTS.md");
}

/**
 * A long scenario's script in its own process: as it is in a full run (writing its page
 * and its section of RESULTS.md), `--quick` with its page in the temporary directory else.
 */
async function runLongScenario(
  script: string,
  mode: "full" | "quick" | "smoke",
  page: string,
): Promise<void> {
  const args = ["--import", "tsx", script];
  if (mode !== "full") args.push("--quick", "--results", join(tmpdir(), page));
  const child = spawn(process.execPath, args, { cwd: root, stdio: "inherit" });
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`${script} exited with ${code}`);
}

/**
 * bench/storm/run.ts in its own process: 19,000 clients in a full run, 2,000 in a quick
 * one (written to bench/STORM.md only in a full run).
 */
async function runStorm(mode: "full" | "quick" | "smoke"): Promise<void> {
  const clients = mode === "full" ? 19_000 : mode === "quick" ? 2000 : 200;
  const args = ["--import", "tsx", "bench/storm/run.ts", "--clients", String(clients)];
  if (mode !== "full") args.push("--processes", "1", "--results", join(tmpdir(), "STORM.md"));
  const child = spawn(process.execPath, args, { cwd: root, stdio: "inherit" });
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`bench/storm/run.ts exited with ${code}`);
}

/** The targets, each with what this run measured. */
function targets(results: BenchResult[]): string {
  const get = (scenario: string, runtime: string, subject: string) =>
    results.find((r) => r.scenario === scenario && r.runtime === runtime && r.subject === subject)
      ?.median ?? Number.NaN;
  const rows: [string, number, string, boolean][] = [];
  for (const runtime of RUNTIMES) {
    for (const scenario of ["actions", "fan-out"]) {
      const ratio = get(scenario, runtime, "socketapi") / get(scenario, runtime, "raw");
      rows.push([
        `${scenario} on ${runtime}: at least 0.90 of raw`,
        ratio,
        `${ratio.toFixed(2)}x`,
        ratio >= 0.9,
      ]);
    }
    for (const scenario of [
      "memory per connection",
      "heap per connection",
      "memory per subscribed connection",
    ]) {
      const above = get(scenario, runtime, "socketapi") - get(scenario, runtime, "raw");
      const where = scenario === "memory per subscribed connection" ? " at scale" : "";
      rows.push([
        `${scenario}${where} on ${runtime}: at most 1 KiB above raw`,
        above,
        `${Math.round(above)} B above`,
        above <= 1024,
      ]);
    }
    for (const scenario of ["memory per subscription", "heap per subscription"]) {
      const above = get(scenario, runtime, "socketapi") - get(scenario, runtime, "raw");
      rows.push([
        `${scenario} on ${runtime}: at most 256 B above raw`,
        above,
        `${Math.round(above)} B above`,
        above <= 256,
      ]);
    }
    if (runtime !== "deno") {
      const chunks =
        get("stream chunks", runtime, "socketapi") / get("stream chunks", runtime, "raw");
      rows.push([
        `stream chunks on ${runtime}: at least 0.90 of raw`,
        chunks,
        `${chunks.toFixed(2)}x`,
        chunks >= 0.9,
      ]);
    }
    const p99 = get("latency p99", runtime, "socketapi") / get("latency p99", runtime, "raw");
    rows.push([
      `latency p99 on ${runtime}: at most 1.2x raw`,
      p99,
      `${p99.toFixed(2)}x`,
      p99 <= 1.2,
    ]);
  }
  const atScale = (scenario: string, subject: string) =>
    get(scenario, "node", subject) / get(scenario, "node", "socket.io");
  const scaleMemory = atScale("memory per subscribed connection", "socketapi");
  rows.push([
    "memory per subscribed connection at scale vs Socket.IO on Node: at most half",
    scaleMemory,
    `${scaleMemory.toFixed(2)} of it`,
    scaleMemory <= 0.5,
  ]);
  const actions = get("actions", "node", "socketapi") / get("actions", "node", "socket.io");
  const fanout = get("fan-out", "node", "socketapi") / get("fan-out", "node", "socket.io");
  const memory =
    get("memory per connection", "node", "socketapi") /
    get("memory per connection", "node", "socket.io");
  rows.push([
    "actions vs Socket.IO on Node: at least 1.5x",
    actions,
    `${actions.toFixed(2)}x`,
    actions >= 1.5,
  ]);
  rows.push([
    "fan-out vs Socket.IO on Node: at least 3x",
    fanout,
    `${fanout.toFixed(2)}x`,
    fanout >= 3,
  ]);
  rows.push([
    "memory per connection vs Socket.IO on Node: at most half",
    memory,
    `${memory.toFixed(2)} of it`,
    memory <= 0.5,
  ]);
  for (const runtime of RUNTIMES) {
    const ratio =
      get("fan-out with history", runtime, "socketapi") / get("fan-out", runtime, "socketapi");
    rows.push([
      `fan-out with history on ${runtime}: at most 15% slower than without`,
      ratio,
      `${ratio.toFixed(2)}x`,
      ratio >= 0.85,
    ]);
  }
  const across = (subject: string) => get("fan-out across processes", "node", subject);
  const overRedis = across("socketapi over redis") / across("socket.io over redis");
  rows.push([
    "fan-out across processes over Redis vs Socket.IO's Redis adapter: at least 3x",
    overRedis,
    `${overRedis.toFixed(2)}x`,
    overRedis >= 3,
  ]);
  const overCluster =
    across("socketapi over redis cluster") /
    across("socket.io over redis cluster (sharded adapter)");
  rows.push([
    "fan-out across processes over a 3-primary Redis Cluster vs Socket.IO's sharded adapter: at least 3x",
    overCluster,
    `${overCluster.toFixed(2)}x`,
    overCluster >= 3,
  ]);
  for (const subject of [
    "socketapi over redis",
    "socketapi over nats",
    "socketapi over redis cluster",
  ]) {
    const ratio = across(subject) / get("fan-out", "node", "socketapi");
    rows.push([
      `fan-out across processes, ${subject}: at least 0.8 of one process (both instances share the servers' one core here)`,
      ratio,
      `${ratio.toFixed(2)}x`,
      ratio >= 0.8,
    ]);
    const idle = get("messages to an instance without subscribers", "node", subject);
    rows.push([
      `${subject}: an instance without subscribers receives no broadcast`,
      idle,
      `${idle} messages`,
      idle === 0,
    ]);
  }
  return [
    "| target | measured | met |",
    "| --- | ---: | --- |",
    ...rows.map(([target, , shown, met]) => `| ${target} | ${shown} | ${met ? "yes" : "**no**"} |`),
  ].join("\n");
}

function resultsPage(machine: Record<string, unknown>, sizes: Sizes, rendered: string): string {
  return `# Benchmark results

Produced by \`npm run bench\` on ${String(machine.date).slice(0, 10)}; the machine: ${machine.cpus} × ${machine.cpu},
${machine.memory}, Node ${machine.node}, Bun ${machine.bun}. Load generator: ${machine.loadGenerator}.
Each subject ran ${sizes.repetitions} times, interleaved with the others; the table shows medians, min and
max. Ratios are against \`raw\` on the same runtime in the same run (for memory: bytes above raw).

Sizes: actions with ${sizes.connections} connections × ${sizes.inflight} requests in flight for ${sizes.duration} s after
${sizes.warmup} s of warm-up; latency at ${sizes.rate} requests/s in total; fan-out of ${sizes.broadcasts} broadcasts to
${sizes.subscribers} subscribers; memory over ${sizes.idle} idle connections (RSS after a collection).

## Targets

${targets(lastResults)}

## All results

${rendered}

## Across processes

Three instances of each subject and the broker they share, on the servers' core: 
${sizes.subscribers} subscribers split between the first two instances, ${sizes.broadcasts} broadcasts made on the first
(deliveries per second until every subscriber has them all, median of five bursts); then
100 broadcasts per second, timed from the request to their arrival at the subscribers of
the other instance (p50, p99); and the messages the third instance, which has no
subscriber, received from the broker meanwhile. "over redis cluster": three primaries and
three replicas (six \`redis-server\` processes), SocketAPI over sharded pub/sub against
Socket.IO's \`createShardedAdapter\`. The time without delivery at each broker failover is
measured by \`npm run bench:failovers\`, in [FAILOVERS.md](FAILOVERS.md); the reconnect
storms (19,000 clients back after a restart or a failover) by \`npm run bench -- --storm-only\`
(and at the end of a full run), in [STORM.md](STORM.md); a network that drops, delays or
cuts packets between an instance and Redis by \`npm run bench -- --faults-only\` (and at
the end of a full run), in [FAULTS.md](FAULTS.md); 100,000 connections over \`--workers\`
against Socket.IO's cluster adapter by \`npm run bench -- --hundred-thousand-only\` (and
last in a full run), in [HUNDRED-THOUSAND.md](HUNDRED-THOUSAND.md).

${clusterTable(lastResults)}

## ${sizes.scale.toLocaleString("en-US")} connections

${sizes.scale.toLocaleString("en-US")} connections to one server process, opened at once by ${SCALE_WORKERS} load generator processes
(the limit of open files per process is 20,000 here), in ${sizes.scaleRepetitions} of the repetitions: the
connect rate (all of them, from the first upgrade to the last open), the server's RSS per
connection after a collection, then per connection once each has subscribed to the
broadcast channel (and its heap), the time from a broadcast's request to its delivery to
the last of them (median of five after one warm-up), and round trips per second on
${sizes.connections} of them (${sizes.inflight} in flight each) while all are connected. Socket.IO on Node only.

${scaleTable(lastResults)}

On paper, for a machine whose open-file limit is raised: memory per subscribed connection
× 1,000,000, how many subscribed connections the memory of this machine would hold, and a
broadcast to a million if its time grows linearly from ${sizes.scale.toLocaleString("en-US")} (one process sends
it all; past that, instances behind a relay share it, see "Across processes").

${projectionTable(lastResults, sizes.scale, Number.parseInt(String(machine.memory), 10))}

## History

The fan-out above on a channel declared with \`history: { size: 1000, ttl: 60_000 }\` (in
memory: each broadcast kept and stamped with its offset), against the same channel
without; and the time a client that missed 1,000 broadcasts takes to get them all, from
its subscribe with \`since\` to the last missed frame (median of five, after one warm-up).

${historyTable(lastResults)}

## Presence

A join and leave storm on a channel with presence: half the memory scenario's connections
(at most 1,000) are members listening to joins and leaves; as many more subscribe at once
(the time until every member heard every join: members × newcomers frames), then close
(the same for the leaves).

${presenceTable(lastResults)}

## Streams

${sizes.streams} streaming answers at once, one per connection, each of ${sizes.chunks}
small chunks (\`{"seq":N}\`), until the last one completed (the median of five runs,
after a warm-up), against the raw server writing the same \`chunk\` frames in a loop. Then,
SocketAPI only: ${sizes.held} streams held open (ten per connection, each after its first
chunk), the server's memory per open stream, and the time from each one's \`cancel\` to
its generator's \`finally\`, as the server measured it.

${streamTable(lastResults)}

## What the core does to stay close to raw, and what it bought

Measured with the same load generator while the core was tuned (single runs, so ± the
noise above):

| change | effect measured |
| --- | --- |
| writes corked per event-loop turn on Node (one \`writev\` per socket per turn) | fan-out: raw-naive is 0.2x of corked raw in the table; SocketAPI writes the corked way |
| each broadcast serialized once, sent as the same string to every subscriber | one \`JSON.stringify\` per broadcast whatever the number of subscribers (a test pins it) |
| Bun: native topics (\`ws.subscribe\`, \`server.publish\`) instead of a loop | fan-out on Bun at raw's level |
| actions served synchronously when nothing is asynchronous (no \`async\` function, no microtask, no queue) | actions on Node: 116k → 123k round trips/s against raw's 144k → 132k (0.81x → 0.93x, one run each) |
| handler context as a class with lazy \`request\`, \`signal\` and \`channels\`; cached answer prefixes; validation without \`safeParse\`'s result object | fewer allocations per frame: garbage collection under load from 3.0% to 2.5% of the server's time |
| lazy connection id, state, queue and subscriptions; shared \`ws\` listeners; no \`Headers\` built unless read; upgrades admitted without a promise | heap per idle connection on Node: 6.0–7.0 KiB → 3.6 KiB (raw: 3.0 KiB) |
| the upgrade request's headers kept as one string until a handler reads them (Node, Deno); Bun keeps its native \`Headers\` | heap per idle connection on Node: 167 B less (heap snapshots, 1,000 connections) |
| one channel held as its name, a set only from two (no \`Set\` subclass with fields per connection); the intake let go between frames when no rate limit's bucket is in it | heap per subscription (probes of 2,000 connections): Bun 593–610 → 220–244 B, Node 477–508 → 248–344 B; \`bun:jsc\`'s \`heapStats()\` counted a \`Set\`, a butterfly and an object per subscribed connection before, nothing after |
| the dispatch asks whether anything traces before calling \`startFrame\` | Bun, 2,000 connections, one action each, nothing recording: RSS after the first action 1.0–1.9 KB → 0.5–1.0 KB per connection, the heap unchanged |
| a stream's \`chunk\` frames: the action's name and the request's id written once per stream (one \`JSON.stringify\` and one concatenation per chunk); the Node socket's \`send\` without a rest array per frame | stream chunks on Node, both servers up and the load alternating between them, 8 runs each: 0.86x → 0.96x of raw (ratio of the medians) |

What remains above raw is the work a framework is for: the envelope's checks, the action
lookup, valibot's validation of the input, and the context object.

### Memory per idle connection, above raw

A heap snapshot of 1,000 idle connections on Node (snapshot before and after, divided by
1,000) shows what SocketAPI keeps above \`ws\` alone: the session (176 B), the upgrade
request (56 B, plus its headers as one string: 357 B for the 12 headers of Node's own
WebSocket client), the \`ws\` socket subclass and its listeners (about 100 B). That is
about 690 B of heap, all of it needed to serve \`ctx.request\`, \`ctx.connection\` and the
heartbeat. On Deno (V8 heap snapshots the same way, against the raw Deno server): the
session (168 B), the kept request (56 B and its headers' string), three event listeners
and their closures (about 160 B more than raw's two handlers), and 1.6 KB that are
Deno's: reading the upgrade request's headers whole (the copy a connection must keep, as
Deno closes the request once upgraded) makes Deno cache a sorted list of them on the
request's \`Headers\`, an array and two strings per header, which the socket keeps alive.
Copying them from a clone of the request measured 5,554 B of heap per connection instead
of 7,199 B (raw 4,058 B), but a clone follows the request's signal, and Deno then prints a
warning about its legacy abort behaviour to every app that uses the adapter; so the copy
is made from the request itself.

RSS above raw moves more than that, from run to run, because it is not what the process
keeps but what the allocators have committed: on Node, V8 grows the young generation as
2,000 connections are opened (6–12 MB, depending on the run), so raw and SocketAPI differ by
−500 to +2,000 B per connection between runs of the same build. On Bun, JavaScriptCore's
heap and the native \`Headers\` show about 3 bytes of RSS per byte kept: Bun's raw server
with a 19-field object per socket measured +760 B of RSS for +264 B of heap; keeping the
request's native \`Headers\` costs about 700 B of RSS (a copy as one string in the heap cost
1,700 B, so Bun keeps the native object). At 19,000 connections the same build measures
+180 B of RSS per connection above raw on Node and +1,155 B on Bun (the scale table): the
allocators' fixed costs spread thinner. On Deno, +2,534 B: the 1.6 KB of Deno's header
cache above, and the rest of the heap. The heap target is met on Node and Bun; the RSS one
is not on Bun, by the allocators' multiple of what is kept, nor on Deno.

### Memory per subscription

What one subscription keeps on the server is its entry in the channel's subscribers (a
\`Set\` entry, or Bun's native topic) and, for a connection's first channel, nothing more
than the name: the heap per subscription is within 256 B of raw on all three runtimes
(the table: +73 B on Node, +230 B on Bun, +91 B on Deno). On Bun, \`bun:jsc\`'s \`heapStats()\` counts no object per subscription any
more (2,000 connections), and the JavaScriptCore heap's capacity grows by 231 B per
subscription; the RSS still grows by 2.1–2.8 KB per subscription against raw's 0.6–0.7 KB.
Probes of where: a connection's first frame answered with an error (\`NOT_FOUND\`, an
unknown type) adds no RSS; its first frame served by a handler (an action that returns
\`null\`, or a subscribe) adds 1.8–2.4 KB once, and no more for the frames after it (three
more rounds: −20 to +240 B per connection); forcing collections
(\`BUN_GARBAGE_COLLECTOR_LEVEL=2\`) or waiting 6 s changes nothing; the total over 500,
2,000 and 4,000 connections is 1.0, 3.7 and 4.5 MB, so it is neither a fixed cost nor
linear. It is native memory of Bun's, not an object the framework keeps; what the probes
narrowed it to is a call into the telemetry from the path of a handled frame, even one that
returns at once: \`startFrame\` (the check above), and counting the subscription for the
metrics. Asking \`telemetry.recording\` before counting it, a change made after this run,
measured in a run of the Bun subjects alone (5 repetitions, same sizes): memory per
subscription 1,399 B against raw's 694 B (+705 B; +2,023 B in the table above), heap +227 B,
memory per connection +2,189 B, actions 1.00x, fan-out 0.91x, p99 1.23x (SocketAPI's five
p99 runs between 1.6 and 3.3 ms, raw's between 1.2 and 3.6 ms). On Node the RSS per subscription is bimodal for raw too (2 to
2,032 B over five runs: the young generation grows or does not; SocketAPI minus raw in
the five repetitions of this run: +328, −1,245, +2,454, +328, −1,442 B), so the median
misses the target by 72 B, far less than raw's own swing between runs.

### Tail latency

The latency scenario's p99 moves by up to 2x between runs of the same build on this
machine (Bun, 3 runs each in a row: raw 1.46, 1.95, 2.67 ms; SocketAPI 2.10, 2.91, 3.98 ms).
Its causes, measured on Bun: garbage collection is 11 to 12 Eden collections of 0.4 to
2.1 ms over the 5-second run for both servers (\`BUN_JSC_logGC=1\`), which can touch at
most 0.2% of the requests; the load generator's timers firing together (50 connections
every 10 ms) are not it either: spreading them evenly over the 10 ms left p99 at
1.9–2.0 ms for raw and 2.6–2.7 ms for SocketAPI. What is left is the time a request
spends in each server's event loop behind the others (p50 0.23 ms against 0.21 ms in the
table): about 10–20 % more work per frame, for the envelope's checks, the action lookup
and valibot's validation. In this run p99 is 0.97x raw on Node and 0.95x on Bun, 1.41x on
Deno; the five repetitions' ratios on Deno are 2.29, 1.00, 2.22, 0.93 and 0.43: the row
measures this machine's scheduling more than the servers.

### 19,000 connections

One process holds 19,000 connections on every runtime, with a broadcast reaching the last
of them in 0.3–0.4 s and actions answered at 0.90x to 1.11x raw's rate while they are all
connected. Memory decides how far one process goes: about 5.5 KB of RSS per subscribed
connection on Node (raw 6.1 KB), 3.1 KB on Bun (raw 1.7 KB), 22.0 KB on Deno (raw
18.6 KB), so a machine with this one's 24 GiB and a raised open-file limit would hold
about 4.7 million connections in memory on Node and 8.2 million on Bun, if one process
could use it all; a broadcast to a million from one process would take 15–20 s (the
projection table), so past about 100,000 connections per process the answer is more
processes behind a relay (docs/scaling.md). Socket.IO on Node holds the same 19,000 at
2.5x SocketAPI's memory and takes 1.8x as long to reach them all. The connect rates move
the most between repetitions (raw on Node: 1,229, 3,191 and 3,754 per second), as four
load generator processes share one core.
`;
}

await main();
