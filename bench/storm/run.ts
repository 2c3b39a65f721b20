// The reconnect storm: CLIENTS clients (the typed client), each subscribed to one of 100
// channels with history, broadcasts flowing to every channel every second; then the
// server is killed (SIGKILL) and started again, or one of two instances behind nginx (the
// docs' configuration) is killed and its clients land on the other. Measured from the kill
// until every client that dropped is back (its missed broadcasts received, or a reset
// telling it they cannot be): that time, the server's peak RSS and CPU, the Redis commands
// the storm cost, refusals, gaps and duplicates in the offsets every client checks, and
// clients that gave up. Socket.IO with connectionStateRecovery in the same restart.
//
//   node --import tsx bench/storm/run.ts [--clients 19000] [--processes 4] [--only "NAME;NAME"]
//                                        [--results FILE] [--json FILE]
//
// Run from `npm run bench -- --storm-only`, and at the end of a full `npm run bench`.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { ensureNginx, redisCliRun, startRedis } from "../../tests/helpers/brokers.ts";
import { freePort } from "../../tests/helpers/server-process.ts";
import { putSection } from "../results-sections.ts";
import { usageOf } from "../stats.ts";

const root = resolve(import.meta.dirname, "..", "..");
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
/** How often the publisher broadcasts to every room, in ms. */
const PUBLISH_EVERY = 1000;
/** How long broadcasts flow before the kill, and how long the killed server stays down. */
const FLOW_MS = 3000;
const DOWN_MS = 500;
/** Past this, the storm is reported as not settled. */
const SETTLE_TIMEOUT_MS = 120_000;

/** A subject of the storm. */
export interface StormSubject {
  name: string;
  kind: "restart" | "failover";
  protocol: "socketapi" | "socketio";
  /** Redis history and relay (else this process's memory). */
  redis: boolean;
  /** `connectRate.perSecond` of the servers, if set. */
  connectRate?: number;
}

export const STORM_SUBJECTS: StormSubject[] = [
  { name: "socketapi over redis", kind: "restart", protocol: "socketapi", redis: true },
  {
    name: "socketapi over redis, connectRate 500/s",
    kind: "restart",
    protocol: "socketapi",
    redis: true,
    connectRate: 500,
  },
  { name: "socketapi, memory history", kind: "restart", protocol: "socketapi", redis: false },
  {
    name: "socket.io, connectionStateRecovery",
    kind: "restart",
    protocol: "socketio",
    redis: false,
  },
  {
    name: "socketapi over redis, 2 instances behind nginx, one killed",
    kind: "failover",
    protocol: "socketapi",
    redis: true,
  },
];

/** What one storm measured. */
export interface StormResult {
  subject: string;
  clients: number;
  /** Clients whose socket dropped, and of them: back with what they missed, told it is gone. */
  dropped: number;
  recovered: number;
  reset: number;
  /** From the kill until the last dropped client was back, ms; NaN when it did not settle. */
  allBackMs: number;
  /** From the restarted server's first line (listening) until then; NaN in a failover. */
  fromRestartMs: number;
  /** The half-way client: from the kill until half of them were back. */
  halfBackMs: number;
  gaps: number;
  duplicates: number;
  refusals: number;
  gaveUp: number;
  /** What the clients' `onError` heard from the kill on, by code. */
  errors: Record<string, number>;
  /** The taking server's RSS before the kill (failover) or after its restart, and at peak, bytes. */
  rssBefore: number;
  rssPeak: number;
  /** Its CPU from the kill until all were back, in % of one core. */
  cpuPercent: number;
  /** Commands Redis processed from the kill until all were back, in all and per command. */
  redisCommands: number;
  redisCalls: Record<string, number>;
}

interface Load {
  child: ChildProcess;
  ask(command: string): Promise<Record<string, unknown>>;
}

function startLoad(options: Record<string, unknown>): Load {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "bench/storm/clients.ts", JSON.stringify(options)],
    { cwd: root, stdio: ["pipe", "pipe", "inherit"] },
  );
  started.add(child);
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const waiting: ((line: Record<string, unknown>) => void)[] = [];
  lines.on("line", (line) => {
    if (!line.startsWith("{")) return;
    waiting.shift()?.(JSON.parse(line));
  });
  return {
    child,
    ask: (command) =>
      new Promise((done) => {
        waiting.push(done);
        child.stdin?.write(`${command}\n`);
      }),
  };
}

/** A server process, resolved once it says it listens. */
async function startServer(file: string, env: Record<string, string>): Promise<ChildProcess> {
  const profile = process.env.STORM_PROFILE
    ? ["--cpu-prof", "--cpu-prof-dir", process.env.STORM_PROFILE]
    : [];
  const child = spawn(process.execPath, [...profile, "--import", "tsx", file], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  started.add(child);
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  await new Promise<void>((done, fail) => {
    lines.on("line", (line) => {
      if (line.startsWith("listening")) done();
    });
    child.once("exit", (code) => fail(new Error(`${file} exited with ${code}`)));
  });
  return child;
}

/** The calls Redis served so far, per command. */
async function redisCommands(port: number | undefined): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  if (port === undefined) return calls;
  const info = await redisCliRun(["-p", String(port), "INFO", "commandstats"]);
  for (const [, command, count] of info.matchAll(/cmdstat_([\w|]+):calls=(\d+)/g)) {
    calls.set(command as string, Number(count));
  }
  return calls;
}

/** The calls made between two readings, per command, the most first. */
function callsBetween(before: Map<string, number>, after: Map<string, number>): [string, number][] {
  return [...after]
    .map(([command, count]): [string, number] => [command, count - (before.get(command) ?? 0)])
    .filter(([command, count]) => count > 0 && command !== "info")
    .sort((a, b) => b[1] - a[1]);
}

/** nginx in front of `ports`, configured as docs/scaling.md says, for `clients` connections. */
async function startNginx(ports: number[], work: string): Promise<{ port: number; stop(): void }> {
  const nginx = ensureNginx();
  if (!nginx) throw new Error("nginx is not installed, nor installable");
  const guide = readFileSync(join(root, "docs", "scaling.md"), "utf8");
  const block = /```nginx\n([\s\S]*?)```/.exec(guide)?.[1];
  if (!block) throw new Error("docs/scaling.md has no nginx block");
  const port = await freePort();
  const servers = block
    .replace("server 10.0.0.11:8000;", `server 127.0.0.1:${ports[0]};`)
    .replace("server 10.0.0.12:8000;", `server 127.0.0.1:${ports[1]};`)
    .replace("listen 80;", `listen 127.0.0.1:${port} reuseport;`);
  // Each proxied socket takes two connections of a worker (and two descriptors), and
  // reuseport spreads them unevenly: each of four workers may hold 9,500 of them.
  await writeFile(
    join(work, "nginx.conf"),
    `daemon off;\nworker_processes 4;\nworker_rlimit_nofile 20000;\npid ${work}/nginx.pid;\n` +
      "error_log stderr crit;\nevents { worker_connections 19000; }\nhttp {\n" +
      `access_log off;\nclient_body_temp_path ${work}/body;\nproxy_temp_path ${work}/proxy;\n` +
      `${servers}}\n`,
  );
  const child = spawn(nginx, ["-p", work, "-c", join(work, "nginx.conf")], { stdio: "inherit" });
  started.add(child);
  await sleep(500);
  return { port, stop: () => child.kill("SIGKILL") };
}

/** One storm of `subject`: set up, connect, flow, kill, wait for everyone, tear down. */
export async function storm(
  subject: StormSubject,
  clients: number,
  processes: number,
): Promise<StormResult> {
  const redis = subject.redis ? await startRedis() : undefined;
  if (redis) brokers.add(redis);
  const work = await mkdtemp(join(tmpdir(), "socketapi-storm-"));
  const children: ChildProcess[] = [];
  const loads: Load[] = [];
  let nginx: { port: number; stop(): void } | undefined;
  try {
    const file =
      subject.protocol === "socketio"
        ? "bench/storm/socketio-server.ts"
        : "bench/storm/socketapi-server.ts";
    const env = (port: number, publishes: boolean): Record<string, string> => ({
      PORT: String(port),
      ...(redis ? { REDIS_URL: redis.url } : {}),
      ...(publishes ? { PUBLISH_EVERY: String(PUBLISH_EVERY) } : {}),
      ...(subject.connectRate ? { CONNECT_RATE: String(subject.connectRate) } : {}),
    });
    // Over Redis, a publisher instance of its own broadcasts, and goes on while the
    // clients' server is down; without Redis, the server itself.
    if (redis) children.push(await startServer(file, env(await freePort(), true)));
    const ports = [await freePort(), await freePort()];
    const instances = subject.kind === "failover" ? ports : ports.slice(0, 1);
    const servers: ChildProcess[] = [];
    for (const port of instances) servers.push(await startServer(file, env(port, !redis)));
    children.push(...servers);
    let url = `ws://127.0.0.1:${ports[0]}/`;
    if (subject.kind === "failover") {
      nginx = await startNginx(ports, work);
      url = `ws://127.0.0.1:${nginx.port}/`;
    }
    const share = Math.ceil(clients / processes);
    for (let i = 0; i < processes; i++) {
      loads.push(
        startLoad({
          url,
          protocol: subject.protocol,
          share: Math.min(share, clients - i * share),
          first: i * share,
          localAddress: `127.0.0.${10 + i}`,
        }),
      );
    }
    const connected = await Promise.all(loads.map((load) => load.ask("connect")));
    console.error(`  connected: ${JSON.stringify(connected)}`);
    await sleep(FLOW_MS);
    await Promise.all(loads.map((load) => load.ask("mark")));
    const victim = servers[0] as ChildProcess;
    // The server that takes the storm: the restarted one, or the instance that survives.
    let taker = subject.kind === "failover" ? (servers[1] as ChildProcess) : undefined;
    const commandsBefore = await redisCommands(redis?.port);
    const usageBefore = taker?.pid ? usageOf(taker.pid) : undefined;
    const killedAt = Date.now();
    victim.kill("SIGKILL");
    await once(victim, "exit");
    let restartedAt = Number.NaN;
    if (subject.kind === "restart") {
      await sleep(DOWN_MS);
      taker = await startServer(file, env(ports[0] as number, !redis));
      restartedAt = Date.now();
      children.push(taker);
    }
    const takerPid = taker?.pid as number;
    const startUsage = usageBefore ?? usageOf(takerPid);
    let rssPeak = startUsage?.rss ?? 0;
    let halfBackAt = Number.NaN;
    let allBackAt = Number.NaN;
    let last: Record<string, number>[] = [];
    const sum = (key: string) => last.reduce((total, status) => total + (status[key] ?? 0), 0);
    let lastPrinted = Date.now();
    while (Date.now() - killedAt < SETTLE_TIMEOUT_MS) {
      const usage = usageOf(takerPid);
      if (usage) rssPeak = Math.max(rssPeak, usage.rss);
      last = (await Promise.all(loads.map((load) => load.ask("status")))) as Record<
        string,
        number
      >[];
      const away = sum("away");
      const back = sum("back");
      if (Number.isNaN(halfBackAt) && away > 0 && back >= away / 2) halfBackAt = Date.now();
      if (away > 0 && back === away && sum("open") === clients) {
        allBackAt = Date.now();
        break;
      }
      if (Date.now() - lastPrinted > 5000) {
        lastPrinted = Date.now();
        console.error(
          `  ${Date.now() - killedAt} ms: away ${away}, back ${back}, open ${sum("open")}`,
        );
      }
      await sleep(100);
    }
    const endUsage = usageOf(takerPid);
    const calls = callsBetween(commandsBefore, await redisCommands(redis?.port));
    const elapsed = (Number.isNaN(allBackAt) ? Date.now() : allBackAt) - killedAt;
    const errors: Record<string, number> = {};
    for (const status of last as Record<string, unknown>[]) {
      for (const [code, count] of Object.entries(status.errorsByCode ?? {})) {
        errors[code] = (errors[code] ?? 0) + Number(count);
      }
    }
    const refusals = last.reduce(
      (total, status) => total + Number((status as Record<string, unknown>).refusals ?? 0),
      0,
    );
    return {
      subject: subject.name,
      clients,
      dropped: sum("away"),
      recovered: sum("recovered"),
      reset: sum("reset"),
      allBackMs: allBackAt - killedAt,
      fromRestartMs: allBackAt - restartedAt,
      halfBackMs: halfBackAt - killedAt,
      gaps: sum("gaps"),
      duplicates: sum("duplicates"),
      refusals,
      gaveUp: sum("gaveUp"),
      errors,
      rssBefore: startUsage?.rss ?? 0,
      rssPeak,
      cpuPercent:
        endUsage && startUsage ? ((endUsage.cpuMs - startUsage.cpuMs) / elapsed) * 100 : 0,
      redisCommands: calls.reduce((total, [, count]) => total + count, 0),
      redisCalls: Object.fromEntries(calls),
    };
  } finally {
    await Promise.all(loads.map((load) => load.ask("close").catch(() => {})));
    for (const load of loads) load.child.kill("SIGKILL");
    for (const child of children) child.kill("SIGKILL");
    nginx?.stop();
    await redis?.kill();
    if (redis) brokers.delete(redis);
    await rm(work, { recursive: true, force: true });
  }
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
const seconds = (ms: number | null) =>
  ms === null || Number.isNaN(ms) ? "n/a" : `${(ms / 1000).toFixed(2)} s`;

/** The storm's table, in Markdown. */
export function stormTable(results: readonly StormResult[]): string {
  const lines = [
    "| subject | clients | dropped | back with what they missed | told it is gone (reset) | half back | all back | from restart | gaps | duplicates | refusals (503) | gave up | server RSS before → peak | server CPU | Redis commands | history reads |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of results) {
    lines.push(
      `| ${r.subject} | ${r.clients.toLocaleString("en-US")} | ${r.dropped.toLocaleString("en-US")} | ${r.recovered.toLocaleString("en-US")} | ${r.reset.toLocaleString("en-US")} | ${seconds(r.halfBackMs)} | ${seconds(r.allBackMs)} | ${seconds(r.fromRestartMs)} | ${r.gaps} | ${r.duplicates} | ${r.refusals.toLocaleString("en-US")} | ${r.gaveUp} | ${mib(r.rssBefore)} → ${mib(r.rssPeak)} | ${r.cpuPercent.toFixed(0)} % | ${r.redisCommands.toLocaleString("en-US")} | ${(r.redisCalls.xrange ?? 0).toLocaleString("en-US")} |`,
    );
  }
  return lines.join("\n");
}

/** Every process a storm started, killed if the bench itself is stopped. */
const started = new Set<ChildProcess>();
const brokers = new Set<{ kill(): Promise<void> }>();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    for (const child of started) child.kill("SIGKILL");
    Promise.all([...brokers].map((broker) => broker.kill())).finally(() => process.exit(1));
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      clients: { type: "string", default: "19000" },
      processes: { type: "string", default: "4" },
      only: { type: "string" },
      results: { type: "string" },
      json: { type: "string" },
      /** Earlier runs' JSON (comma-separated) whose results come first in the table. */
      merge: { type: "string" },
    },
  });
  const clients = Number(values.clients);
  const processes = Number(values.processes);
  const only = values.only?.split(";").map((name) => name.trim());
  const results: StormResult[] = [];
  for (const file of values.merge?.split(",") ?? []) {
    results.push(...(JSON.parse(readFileSync(file, "utf8")) as StormResult[]));
  }
  for (const subject of STORM_SUBJECTS) {
    if (only && !only.includes(subject.name)) continue;
    console.error(`storm: ${subject.name}, ${clients} clients`);
    const result = await storm(subject, clients, processes);
    console.error(JSON.stringify(result));
    results.push(result);
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}`;
  const page = `# Reconnect storms

\`node --import tsx bench/storm/run.ts --clients ${clients} --processes ${processes}\` on
${new Date().toISOString().slice(0, 10)}, ${machine}. ${clients.toLocaleString("en-US")} clients in ${processes} load
processes (each from its own loopback address), each subscribed to one of 100 channels with
history (\`size: 1000\`), a broadcast to every channel every ${PUBLISH_EVERY} ms; after ${FLOW_MS / 1000} s the
server is killed (SIGKILL) and started again ${DOWN_MS} ms later, or one of two instances
behind nginx (docs/scaling.md's configuration) is killed. Times from the kill; "back" is a
client that dropped and then received what it missed, a live broadcast, or a reset.
"history reads": the \`XRANGE\` calls of the recoveries (concurrent ones of a channel share
one). Gaps and duplicates: offsets each client checked on every frame it received.${values.merge ? " Rows of earlier runs merged (`--merge`)." : ""}

${stormTable(results)}
`;
  await writeFile(values.results ?? join(root, "bench", "STORM.md"), page);
  if (!values.results) await putSection("storm", page.replace(/^#/gm, "##"));
  if (values.json) await writeFile(values.json, JSON.stringify(results, null, 2));
  console.log(page);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
