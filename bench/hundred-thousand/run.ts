// 100,000 connections on one machine: the server spread over processes (`--workers`: a
// process may hold 20,000 open files here), the load over more, each from its own
// loopback source address (about 28,000 ephemeral ports each). Measured per subject: the
// connect rate (all opened at once, 256 handshakes in flight per load process), the
// servers' memory per connection and per subscribed connection (RSS of the primary and
// its workers), a broadcast to all of them (from one client's action to the last
// delivery; median of five after a warm-up), and round trips per second on 1,000 of them
// while all are connected (median of three). Against the limit (`ws` in node:cluster,
// broadcasts relayed by the primary) and Socket.IO with its cluster adapter (WebSocket
// only), in the same run and at the same size.
//
//   node --import tsx bench/hundred-thousand/run.ts [--connections 100000] [--workers 8]
//        [--processes 8] [--action-seconds 10] [--only "NAME;NAME"] [--results FILE] [--json FILE]
//
// Run by `npm run bench -- --hundred-thousand-only`, and at the end of a full run.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { freePort } from "../../tests/helpers/server-process.ts";
import { putSection } from "../results-sections.ts";
import { median, rssOf } from "../stats.ts";

const root = resolve(import.meta.dirname, "..", "..");
/** How long one answer of a load process may take (opening its share, say). */
const ANSWER_TIMEOUT_MS = 300_000;
/** Broadcasts to all: one warm-up, then these, of which the median is reported. */
const BROADCASTS = 5;
/** Connections that do round trips while all are connected, and for how long. */
const ACTING = 1000;
/** The default of `--action-seconds`: each of ACTING_ROUNDS, of which the median is reported. */
const ACTING_SECONDS = 5;
const ACTING_ROUNDS = 3;

/** A subject of the scenario. */
export interface CrowdSubject {
  name: string;
  /** What the load speaks to it. */
  protocol: "socketapi" | "socketio";
  /** How it is started (from the repository's root). */
  command: string[];
}

export const CROWD_SUBJECTS: CrowdSubject[] = [
  {
    name: "raw ws, node:cluster",
    protocol: "socketapi",
    command: ["--import", "tsx", "bench/hundred-thousand/raw-server.ts"],
  },
  {
    name: "socketapi, --workers",
    protocol: "socketapi",
    command: ["adapters/node-cli.js", "bench/hundred-thousand/socketapi-app.ts"],
  },
  {
    name: "socket.io, cluster adapter",
    protocol: "socketio",
    command: ["--import", "tsx", "bench/hundred-thousand/socketio-server.ts"],
  },
];

/** What one run measured. */
export interface CrowdResult {
  subject: string;
  connections: number;
  workers: number;
  processes: number;
  /** Connections opened per second, all at once; and connects that failed and were tried again. */
  connectRate: number;
  connectFailures: number;
  /** The servers' RSS (primary and workers) before, once connected, once subscribed. */
  rssBefore: number;
  rssConnected: number;
  rssSubscribed: number;
  /** From one client's action to the last delivery: median and each run, ms. */
  broadcastMs: number;
  broadcastRuns: number[];
  /** Round trips per second on ACTING connections while all are connected: median and each run. */
  actions: number;
  actionRuns: number[];
}

/** A load process, and its answers awaited by key. */
interface Load {
  child: ChildProcess;
  send(line: string): void;
  next(key: string): Promise<Record<string, number>>;
}

function startLoad(options: Record<string, unknown>): Load {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "bench/hundred-thousand/clients.ts", JSON.stringify(options)],
    { cwd: root, stdio: ["pipe", "pipe", "inherit"] },
  );
  started.add(child);
  const received: Record<string, number>[] = [];
  const waiting: {
    key: string;
    resolve: (message: Record<string, number>) => void;
    reject: (error: Error) => void;
  }[] = [];
  let exited: Error | undefined;
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  lines.on("line", (line) => {
    if (!line.startsWith("{")) return;
    const message = JSON.parse(line) as Record<string, number>;
    const waiter = waiting.findIndex((w) => w.key in message);
    if (waiter >= 0) waiting.splice(waiter, 1)[0]?.resolve(message);
    else received.push(message);
  });
  // "close", not "exit": its last answers may still be in its stdout when it exits.
  child.once("close", (code) => {
    exited = new Error(`a load process exited with ${code}`);
    for (const waiter of waiting.splice(0)) waiter.reject(exited);
  });
  return {
    child,
    send: (line) => child.stdin?.write(`${line}\n`),
    next: (key) =>
      new Promise((resolve, reject) => {
        const index = received.findIndex((message) => key in message);
        if (index >= 0) return resolve(received.splice(index, 1)[0] as Record<string, number>);
        if (exited) return reject(exited);
        const timer = setTimeout(
          () => reject(new Error(`no ${key} within ${ANSWER_TIMEOUT_MS} ms`)),
          ANSWER_TIMEOUT_MS,
        );
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

/** The server: the CLI with `--workers`, or Socket.IO's cluster; resolved once all listen. */
async function startServer(
  subject: CrowdSubject,
  port: number,
  workers: number,
): Promise<ChildProcess> {
  const args = [...subject.command, "--port", String(port), "--workers", String(workers)];
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, PORT: String(port), WORKERS: String(workers) },
    stdio: ["ignore", "pipe", "inherit"],
    // A group of its own, so that its workers go with it.
    detached: true,
  });
  started.add(child);
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  await new Promise<void>((done, fail) => {
    lines.on("line", (line) => {
      if (/serving|listening/.test(line)) done();
    });
    child.once("exit", (code) => fail(new Error(`${subject.name} exited with ${code}`)));
  });
  return child;
}

/** RSS of `pid` and of its children, from /proc, in bytes. */
function treeRss(pid: number): number {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {}
  return rssOf(pid) + children.reduce((sum, child) => sum + rssOf(child), 0);
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
/** One run of `subject` with `connections` over `workers` server and `processes` load processes. */
export async function crowd(
  subject: CrowdSubject,
  connections: number,
  workers: number,
  processes: number,
  firstAddress: number,
  actingSeconds = ACTING_SECONDS,
): Promise<CrowdResult> {
  const port = await freePort();
  const server = await startServer(subject, port, workers);
  const loads: Load[] = [];
  try {
    await sleep(1000);
    const rssBefore = treeRss(server.pid as number);
    const share = Math.ceil(connections / processes);
    for (let i = 0; i < processes; i++) {
      loads.push(
        startLoad({
          url: `ws://127.0.0.1:${port}/`,
          protocol: subject.protocol,
          share: Math.min(share, connections - i * share),
          localAddress: `127.0.0.${firstAddress + i}`,
        }),
      );
    }
    const all = (line: string, key: string) => {
      for (const load of loads) load.send(line);
      return Promise.all(loads.map((load) => load.next(key)));
    };
    const connected = await all("connect", "connected");
    const connectMs =
      Math.max(...connected.map((m) => m.finished as number)) -
      Math.min(...connected.map((m) => m.started as number));
    await sleep(2000);
    const rssConnected = treeRss(server.pid as number);
    await all("subscribe", "subscribed");
    await sleep(2000);
    const rssSubscribed = treeRss(server.pid as number);
    const broadcastRuns: number[] = [];
    const publisher = loads[0] as Load;
    for (let seq = 1; seq <= BROADCASTS + 1; seq++) {
      await all(`arm ${seq}`, "armed");
      const delivered = Promise.all(loads.map((load) => load.next("delivered")));
      publisher.send(`shout ${seq}`);
      const { published } = await publisher.next("published");
      const last = Math.max(...(await delivered).map((m) => m.delivered as number));
      if (seq > 1) broadcastRuns.push(last - (published as number));
      await sleep(500);
    }
    const perProcess = Math.max(1, Math.round(ACTING / processes));
    const actionRuns: number[] = [];
    for (let round = 0; round < ACTING_ROUNDS; round++) {
      const answered = await all(`actions ${perProcess} 1 ${actingSeconds}`, "answered");
      actionRuns.push(
        answered.reduce((sum, m) => sum + (m.answered as number) / (m.seconds as number), 0),
      );
    }
    return {
      subject: subject.name,
      connections,
      workers,
      processes,
      connectRate: connections / (connectMs / 1000),
      connectFailures: connected.reduce((sum, m) => sum + (m.failures ?? 0), 0),
      rssBefore,
      rssConnected,
      rssSubscribed,
      broadcastMs: median(broadcastRuns),
      broadcastRuns,
      actions: median(actionRuns),
      actionRuns,
    };
  } finally {
    for (const load of loads) load.child.kill("SIGKILL");
    killGroup(server);
    await sleep(2000);
  }
}

/** Kills `child` and its workers (its process group). */
function killGroup(child: ChildProcess): void {
  try {
    process.kill(-(child.pid as number), "SIGKILL");
  } catch {
    child.kill("SIGKILL");
  }
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const count = (n: number) => Math.round(n).toLocaleString("en-US");

/** The scenario's table, in Markdown. */
export function crowdTable(results: readonly CrowdResult[]): string {
  const lines = [
    "| subject | connections | server processes | connect rate (/s) | server RSS before → connected → subscribed | per connection | per subscribed connection | broadcast to all, to the last delivery (median; runs) | round trips/s on 1,000 while all are connected (median; runs) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of results) {
    const perConnection = (r.rssConnected - r.rssBefore) / r.connections;
    const perSubscribed = (r.rssSubscribed - r.rssBefore) / r.connections;
    lines.push(
      `| ${r.subject} | ${count(r.connections)} | ${r.workers} + primary | ${count(r.connectRate)}${r.connectFailures ? ` (${r.connectFailures} tried again)` : ""} | ${mib(r.rssBefore)} → ${mib(r.rssConnected)} → ${mib(r.rssSubscribed)} | ${kib(perConnection)} | ${kib(perSubscribed)} | ${count(r.broadcastMs)} ms (${r.broadcastRuns.map(count).join(", ")}) | ${count(r.actions)} (${r.actionRuns.map(count).join(", ")}) |`,
    );
  }
  return lines.join("\n");
}

/** Each subject's figures as a ratio of the limit's (the first subject) in the same run. */
export function ratioTable(results: readonly CrowdResult[]): string {
  const [limit, ...others] = results;
  if (!limit || others.length === 0) return "";
  const perSubscribed = (r: CrowdResult) => (r.rssSubscribed - r.rssBefore) / r.connections;
  const metrics: [string, (r: CrowdResult) => number][] = [
    ["connect rate", (r) => r.connectRate],
    ["memory per subscribed connection", perSubscribed],
    ["broadcast to all, to the last delivery", (r) => r.broadcastMs],
    ["round trips/s", (r) => r.actions],
  ];
  const lines = [
    `| against ${limit.subject} | ${others.map((r) => r.subject).join(" | ")} |`,
    `| --- | ${others.map(() => "---:").join(" | ")} |`,
  ];
  for (const [name, value] of metrics) {
    lines.push(
      `| ${name} | ${others.map((r) => `${(value(r) / value(limit)).toFixed(2)}x`).join(" | ")} |`,
    );
  }
  return lines.join("\n");
}

/** Every process the scenario started, killed if the bench itself is stopped. */
const started = new Set<ChildProcess>();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    for (const child of started) killGroup(child);
    process.exit(1);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      connections: { type: "string", default: "100000" },
      workers: { type: "string", default: "8" },
      processes: { type: "string", default: "8" },
      "action-seconds": { type: "string", default: String(ACTING_SECONDS) },
      only: { type: "string" },
      results: { type: "string" },
      json: { type: "string" },
    },
  });
  const connections = Number(values.connections);
  const workers = Number(values.workers);
  const processes = Number(values.processes);
  const actingSeconds = Number(values["action-seconds"]);
  const only = values.only?.split(";").map((name) => name.trim());
  const results: CrowdResult[] = [];
  for (const [index, subject] of CROWD_SUBJECTS.entries()) {
    if (only && !only.includes(subject.name)) continue;
    console.error(`${subject.name}: ${connections} connections`);
    // Each subject from addresses of its own: the last one's ports may still be closing.
    const result = await crowd(
      subject,
      connections,
      workers,
      processes,
      30 + index * 20,
      actingSeconds,
    );
    console.error(JSON.stringify(result));
    results.push(result);
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}`;
  const page = `# ${count(connections)} connections

\`node --import tsx bench/hundred-thousand/run.ts --connections ${connections} --workers ${workers} --processes ${processes}\`
on ${new Date().toISOString().slice(0, 10)}, ${machine}. The server in ${workers} processes on one port
(node:cluster; a process may hold 20,000 open files here) plus the primary; the load in
${processes} processes, each from its own loopback source address, all on the same ${cpus().length} cores.
Connect rate: all opened at once, 256 handshakes in flight per load process. Memory: the RSS
of the primary and its workers. Broadcast: one client's action broadcasts to the channel
every connection subscribes to (carried to the other workers by the primary); from the
action's sending to the last connection's delivery, median of ${BROADCASTS} after a warm-up. Round trips:
${ACTING.toLocaleString("en-US")} connections, one in flight each, ${ACTING_ROUNDS} times ${actingSeconds} s, the rest connected and idle.

${crowdTable(results)}

${ratioTable(results)}
`;
  await writeFile(values.results ?? join(root, "bench", "HUNDRED-THOUSAND.md"), page);
  if (!values.results) await putSection("hundred-thousand", page.replace(/^#/gm, "##"));
  if (values.json) await writeFile(values.json, JSON.stringify(results, null, 2));
  console.log(page);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
