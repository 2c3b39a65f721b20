// The topology of the network-fault test and bench: Redis, instance A and instance B each
// on a host of its own (tests/helpers/netns.ts), A reaching Redis through a delaying proxy
// in the test's namespace (latency on demand), B directly. B broadcasts `{ seq, at }` every
// `bEvery` ms, A every `aEvery` ms with `aPad` bytes more; subscribers of both, in the
// test's namespace over clean links, record every broadcast they get.
import { type ChildProcess, execFileSync } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import type { Status } from "../servers/faults-app.ts";
import { type DelayProxy, delayProxy } from "./delay-proxy.ts";
import type { Frame } from "./fake-client.ts";
import { type Host, makeNetwork, type Network } from "./netns.ts";
import { root } from "./server-process.ts";
import { openClient, type WsClient } from "./ws-client.ts";

/** What a subscriber of a channel received. */
export interface Heard {
  /** B's broadcasts: their seqs, and how long each took from B's clock to here. */
  readonly seqs: number[];
  readonly latencies: number[];
  /** The seqs of each instance's broadcasts, in the order they came. */
  readonly from: Record<string, number[]>;
}

/** The hosts, the instances, and what their subscribers heard. */
export interface FaultHosts {
  readonly network: Network;
  readonly proxy: DelayProxy;
  /** The host of instance A, whose link to Redis is degraded. */
  readonly hostA: Host;
  /** The address and port A reaches Redis at (the proxy's). */
  readonly toRedis: { readonly address: string; readonly port: number };
  /** Subscribers of "ticks" (history) and "plain" (none) on A, and of "ticks" on B. */
  readonly onA: Heard;
  readonly plainOnA: Heard;
  readonly onB: Heard;
  /** What A's "status" answers. */
  statusOfA(): Promise<Status>;
  close(): Promise<void>;
}

export interface FaultHostsOptions {
  readonly bEvery: number;
  readonly aEvery: number;
  readonly aPad: number;
  readonly maxPendingBytes: number;
}

/** A server of tests/servers/faults-app.ts on `host`, once it listens. */
async function instance(
  host: Host,
  env: Record<string, string>,
): Promise<{ child: ChildProcess; url: string }> {
  const child = host.spawn(
    [process.execPath, "--import", "tsx", `${root}/tests/servers/faults-app.ts`],
    { PORT: "8000", INSTANCE: host.name, ...env },
  );
  let output = "";
  child.stderr?.on("data", (chunk) => {
    output += chunk;
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const [line] = (await Promise.race([
    once(lines, "line"),
    once(child, "exit").then(([code]) => {
      throw new Error(`${host.name} exited with ${code}: ${output}`);
    }),
  ])) as [string];
  if (!line.includes("listening")) throw new Error(`${host.name} said ${line}`);
  return { child, url: `ws://${host.address}:8000/` };
}

async function subscriber(url: string, channel: string, sockets: WsClient[]): Promise<Heard> {
  const client = await openClient(url);
  sockets.push(client);
  const heard: Heard = { seqs: [], latencies: [], from: {} };
  client.ws.on("message", (data) => {
    const frame = JSON.parse(String(data)) as Frame;
    if (frame.type !== "data") return;
    const tick = frame.data as { seq: number; at: number; from: string };
    heard.from[tick.from] ??= [];
    heard.from[tick.from]?.push(tick.seq);
    if (tick.from !== "b") return;
    heard.seqs.push(tick.seq);
    heard.latencies.push(Date.now() - tick.at);
  });
  // A broadcast may come before the answer (the instance broadcasts on it itself): the
  // listener above has it; the answer is the first frame that is not data.
  let answer = await client.request({ type: "subscribe", channel }, 10_000);
  while (answer.type === "data") answer = await client.next(10_000);
  if (answer.type !== "subscribed") throw new Error(`subscribe to ${channel}: ${answer.type}`);
  return heard;
}

/** Redis answers a PING at `host`. */
function answers(host: string): boolean {
  try {
    return execFileSync("redis-cli", ["-h", host, "ping"], { stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .includes("PONG");
  } catch {
    return false;
  }
}

/**
 * Makes the hosts and starts Redis, A and B; the subscribers are subscribed when it resolves.
 *
 * @example
 * const hosts = await startFaultHosts({ bEvery: 50, aEvery: 100, aPad: 2000, maxPendingBytes: 262144 });
 * hosts.hostA.drop(hosts.toRedis, 0.1);
 */
export async function startFaultHosts(options: FaultHostsOptions): Promise<FaultHosts> {
  const network = await makeNetwork(["broker", "a", "b"]);
  const sockets: WsClient[] = [];
  let proxy: DelayProxy | undefined;
  const close = async () => {
    for (const socket of sockets) socket.ws.terminate();
    await proxy?.close();
    await network.remove();
  };
  try {
    const { broker, a: hostA, b: hostB } = network.hosts as Record<"broker" | "a" | "b", Host>;
    const redisPath = execFileSync("sh", ["-c", "command -v redis-server"]).toString().trim();
    broker.spawn([
      ...[redisPath, "--bind", broker.address, "--port", "6379"],
      // Its own host on a private bridge: no password, nothing kept.
      ...["--save", "", "--appendonly", "no", "--protected-mode", "no"],
    ]);
    const deadline = Date.now() + 10_000;
    while (!answers(broker.address)) {
      if (Date.now() > deadline) throw new Error("Redis did not start on its host");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    proxy = await delayProxy(network.gateway, { host: broker.address, port: 6379 });
    const a = await instance(hostA, {
      REDIS_URL: `redis://${network.gateway}:${proxy.port}`,
      PUBLISH_EVERY: String(options.aEvery),
      PAD_BYTES: String(options.aPad),
      MAX_PENDING_BYTES: String(options.maxPendingBytes),
    });
    const b = await instance(hostB, {
      REDIS_URL: `redis://${broker.address}:6379`,
      PUBLISH_EVERY: String(options.bEvery),
    });
    const onA = await subscriber(a.url, "ticks", sockets);
    const plainOnA = await subscriber(a.url, "plain", sockets);
    const onB = await subscriber(b.url, "ticks", sockets);
    const status = await openClient(a.url);
    sockets.push(status);
    let id = 0;
    return {
      network,
      proxy,
      hostA,
      toRedis: { address: network.gateway, port: proxy.port },
      onA,
      plainOnA,
      onB,
      async statusOfA() {
        const answer = await status.request({ type: "action", channel: "status", id: ++id }, 5000);
        return answer.data as Status;
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The `p`th percentile of `values` (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/**
 * Broadcasts never heard between the first and the last heard, and the steps back (heard
 * out of order or twice). A broadcast heard twice (a cut one: once unstamped, once from the
 * history) is one step back, and what was heard between its two copies is not missing.
 */
export function holes(seqs: readonly number[]): { missing: number; misordered: number } {
  let misordered = 0;
  for (let i = 1; i < seqs.length; i++) {
    if ((seqs[i] ?? 0) - (seqs[i - 1] ?? 0) < 1) misordered++;
  }
  if (seqs.length === 0) return { missing: 0, misordered };
  const heard = new Set(seqs);
  let low = Number.POSITIVE_INFINITY;
  let high = Number.NEGATIVE_INFINITY;
  for (const seq of seqs) {
    if (seq < low) low = seq;
    if (seq > high) high = seq;
  }
  return { missing: high - low + 1 - heard.size, misordered };
}

/** What A heard of B over `ms`, with `watch` given A's status every 100 ms meanwhile. */
export async function during(
  hosts: FaultHosts,
  ms: number,
  watch: (status: Status) => void = () => {},
): Promise<number[]> {
  const from = hosts.onA.latencies.length;
  const started = Date.now();
  while (Date.now() - started < ms) {
    watch(await hosts.statusOfA());
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return hosts.onA.latencies.slice(from);
}

/** What a partition of A from Redis for `ms` did, once healed and caught up. */
export interface PartitionReport {
  /** From the partition to A's relay not `ok`. */
  readonly notOkAfter: number;
  readonly states: readonly string[];
  readonly peakPendingBytes: number;
  readonly rssBefore: number;
  readonly peakRss: number;
  /** From healing to the first of B's broadcasts heard at A, and to A caught up with B. */
  readonly firstAfter: number;
  readonly caughtUp: number;
  /** A's relay status after it. */
  readonly after: Status;
  /** What A's subscribers heard of B meanwhile (after what was on its way): none, until healed. */
  readonly heardWhilePartitioned: number;
}

/** How long after the partition a broadcast already on its way may still arrive. */
const IN_FLIGHT_MS = 200;

/** Partitions A from Redis for `ms`, heals, and waits (at most `wait`) until A caught up. */
export async function partition(
  hosts: FaultHosts,
  ms: number,
  wait = 30_000,
): Promise<PartitionReport> {
  const states: string[] = [];
  let peakPendingBytes = 0;
  const rssBefore = (await hosts.statusOfA()).rss;
  let peakRss = rssBefore;
  const heardAtStart = hosts.onA.seqs.length;
  hosts.hostA.drop(hosts.toRedis, 1);
  const partitioned = Date.now();
  // What was on its way at the partition may still arrive in the first moment.
  let heardBefore: number | undefined;
  let notOkAfter = Number.NaN;
  await during(hosts, ms, (s) => {
    if (heardBefore === undefined && Date.now() - partitioned >= IN_FLIGHT_MS) {
      heardBefore = hosts.onA.seqs.length;
    }
    const state = s.health?.status ?? "none";
    if (states.at(-1) !== state) states.push(state);
    if (state !== "ok" && Number.isNaN(notOkAfter)) notOkAfter = Date.now() - partitioned;
    peakPendingBytes = Math.max(peakPendingBytes, s.stats?.pendingBytes ?? 0);
    peakRss = Math.max(peakRss, s.rss);
  });
  const heardWhilePartitioned = hosts.onA.seqs.length - (heardBefore ?? heardAtStart);
  const heardUntilHealed = hosts.onA.seqs.length;
  hosts.hostA.drop(hosts.toRedis, 0);
  const healed = Date.now();
  const until = async (done: () => boolean) => {
    while (!done()) {
      if (Date.now() - healed > wait) throw new Error(`A did not catch up within ${wait} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return Date.now() - healed;
  };
  const firstAfter = await until(() => hosts.onA.seqs.length > heardUntilHealed);
  const caughtUp = await until(
    () => (hosts.onA.seqs.at(-1) ?? 0) >= Math.max(...hosts.onB.seqs) - 2,
  );
  await during(hosts, 1000);
  return {
    notOkAfter,
    states,
    peakPendingBytes,
    rssBefore,
    peakRss,
    firstAfter,
    caughtUp,
    after: await hosts.statusOfA(),
    heardWhilePartitioned,
  };
}
