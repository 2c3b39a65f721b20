// A network that fails between hosts: Redis and two instances each on a host of its own
// (network namespaces joined by a bridge, tests/helpers/fault-hosts.ts), the link between
// instance A and Redis clean, then dropping 1 % and 10 % of its packets, then 50 ms ± 10 ms
// slower (a delaying proxy: this kernel has no netem), then cut for 10 s and healed. B
// broadcasts every 50 ms, A every 100 ms (2 KB); delivery latency of B's broadcasts at A's
// subscribers, p50 and p99, under each condition; what was lost, twice or out of order;
// what the partition did. Each repetition starts the hosts afresh; medians with min and
// max. Needs root (it says why it cannot run otherwise).
//
//   node --import tsx bench/faults.ts                  # 3 repetitions, writes bench/FAULTS.md
//   node --import tsx bench/faults.ts --quick          # 1 repetition, short conditions
//   npm run bench -- --faults-only                     # the same as the first, from bench/run.ts
import { writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  during,
  type FaultHosts,
  holes,
  partition,
  percentile,
  startFaultHosts,
} from "../tests/helpers/fault-hosts.ts";
import { whyNoNamespaces } from "../tests/helpers/netns.ts";
import { putSection } from "./results-sections.ts";
import { spread } from "./stats.ts";

const root = resolve(import.meta.dirname, "..");
const MAX_PENDING_BYTES = 256 * 1024;

/** One condition's latencies in one repetition, and what its broadcasts lacked. */
interface Measured {
  p50: number;
  p99: number;
  count: number;
  missing: number;
  misordered: number;
}

/** A condition of the link, applied for `ms` and then taken away. */
interface Condition {
  name: string;
  apply(hosts: FaultHosts): void;
  clear(hosts: FaultHosts): void;
}

const CONDITIONS: Condition[] = [
  { name: "clean", apply: () => {}, clear: () => {} },
  ...[0.01, 0.1].map((probability) => ({
    name: `${probability * 100} % of packets dropped`,
    apply: (hosts: FaultHosts) => hosts.hostA.drop(hosts.toRedis, probability),
    clear: (hosts: FaultHosts) => hosts.hostA.drop(hosts.toRedis, 0),
  })),
  {
    name: "50 ms ± 10 ms added",
    apply: (hosts) => hosts.proxy.setDelay(50, 10),
    clear: (hosts) => hosts.proxy.setDelay(0, 0),
  },
];

/** The heard seqs' holes since `from` of each list. */
function holesSince(lists: readonly (readonly number[])[], from: readonly number[]) {
  let missing = 0;
  let misordered = 0;
  lists.forEach((seqs, i) => {
    // One before, so that a hole at the seam counts.
    const found = holes(seqs.slice(Math.max(0, (from[i] ?? 0) - 1)));
    missing += found.missing;
    misordered += found.misordered;
  });
  return { missing, misordered };
}

async function repetition(ms: number, partitionMs: number) {
  const hosts = await startFaultHosts({
    bEvery: 50,
    aEvery: 100,
    aPad: 2000,
    maxPendingBytes: MAX_PENDING_BYTES,
  });
  try {
    await during(hosts, 2000);
    const conditions = new Map<string, Measured>();
    for (const condition of CONDITIONS) {
      const lists = () => [hosts.onA.seqs, hosts.plainOnA.seqs, hosts.onB.seqs];
      const from = lists().map((seqs) => seqs.length);
      condition.apply(hosts);
      const latencies = await during(hosts, ms);
      condition.clear(hosts);
      await during(hosts, 3000);
      conditions.set(condition.name, {
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        count: latencies.length,
        ...holesSince(lists(), from),
      });
      console.error(`${condition.name}: ${JSON.stringify(conditions.get(condition.name))}`);
    }
    const lostBefore = (await hosts.statusOfA()).stats?.lost ?? 0;
    const plainBefore = hosts.plainOnA.seqs.length;
    const report = await partition(hosts, partitionMs);
    const ticks = holes(hosts.onA.seqs);
    const own = holes(hosts.onA.from.a ?? []);
    const aOnB = holes(hosts.onB.from.a ?? []);
    const result = {
      conditions,
      partition: {
        ...report,
        lost: (report.after.stats?.lost ?? 0) - lostBefore,
        ticksMissing: ticks.missing,
        misordered: ticks.misordered + own.misordered + aOnB.misordered,
        ownMissing: own.missing,
        aOnBMissing: aOnB.missing,
        plainMissed: holes(hosts.plainOnA.seqs.slice(Math.max(0, plainBefore - 1))).missing,
      },
    };
    console.error(`partition: ${JSON.stringify({ ...result.partition, after: undefined })}`);
    return result;
  } finally {
    await hosts.close();
  }
}

type Repetition = Awaited<ReturnType<typeof repetition>>;

function page(runs: readonly Repetition[], ms: number, partitionMs: number): string {
  const cpu = cpus()[0]?.model.trim() ?? "unknown CPU";
  const machine = `${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  const rows = CONDITIONS.map(({ name }) => {
    const of = runs.map((run) => run.conditions.get(name) as Measured);
    const lost = of.reduce((sum, m) => sum + m.missing, 0);
    const misordered = of.reduce((sum, m) => sum + m.misordered, 0);
    return `| ${name} | ${spread(
      of.map((m) => m.p50),
      " ms",
    )} | ${spread(
      of.map((m) => m.p99),
      " ms",
    )} | ${of.reduce((sum, m) => sum + m.count, 0).toLocaleString("en-US")} | ${lost} | ${misordered} |`;
  });
  const parts = runs.map((run) => run.partition);
  const partitionRows = [
    [
      "A's relay not `ok` after",
      spread(
        parts.map((p) => p.notOkAfter),
        " ms",
      ),
    ],
    ["A's relay states", [...new Set(parts.map((p) => p.states.join(" → ")))].join("; ")],
    [
      "first of B's broadcasts at A after healing",
      spread(
        parts.map((p) => p.firstAfter),
        " ms",
      ),
    ],
    [
      "A caught up with B after healing",
      spread(
        parts.map((p) => p.caughtUp),
        " ms",
      ),
    ],
    [
      "B's broadcasts missed by A's subscribers of a channel with history",
      spread(parts.map((p) => p.ticksMissing)),
    ],
    [
      "… of a channel without history (uncounted: nothing saw them lost)",
      spread(parts.map((p) => p.plainMissed)),
    ],
    [
      "A's broadcasts lost (counted in `stats.lost`, both channels)",
      spread(parts.map((p) => p.lost)),
    ],
    [
      '… missed by B\'s subscriber of "ticks" (half the count)',
      spread(parts.map((p) => p.aOnBMissing)),
    ],
    ["A's own broadcasts missed by A's subscribers", spread(parts.map((p) => p.ownMissing))],
    ["broadcasts out of order or twice, anywhere", spread(parts.map((p) => p.misordered))],
    [
      "A's broadcasts pending at most (bound 262,144)",
      spread(
        parts.map((p) => p.peakPendingBytes),
        " bytes",
      ),
    ],
    [
      "A's RSS before → peak",
      spread(
        parts.map((p) => p.rssBefore / 2 ** 20),
        " MiB",
      ) +
        " → " +
        spread(
          parts.map((p) => p.peakRss / 2 ** 20),
          " MiB",
        ),
    ],
    [
      "told to `onError`",
      spread(
        parts.map((p) => p.after.errors.length),
        " time(s)",
      ),
    ],
  ].map(([what, value]) => `| ${what} | ${value} |`);
  return `# A network that fails between hosts

\`node --import tsx bench/faults.ts\` (also \`npm run bench -- --faults-only\`) on
${new Date().toISOString().slice(0, 10)}, ${machine}. Redis, instance A and instance B each
on a host of its own (network namespaces joined by a bridge); A reaches Redis through a
delaying TCP proxy, B directly. B broadcasts every 50 ms, A every 100 ms with 2 KB
(\`maxPendingBytes\` 256 KiB), each on "ticks" (history) and "plain" (none); subscribers
on both instances over clean links. Each condition of the A–Redis link lasts
${ms / 1000} s, with 3 s to settle after; ${runs.length} repetition(s), each with the
hosts started afresh: median (min–max). Latency: from B's clock at the broadcast to
the subscriber on A receiving it (one machine, one clock). Packet loss is iptables'
\`-m statistic --mode random\` on A's side, both ways; the partition a DROP of
everything between A and Redis for ${partitionMs / 1000} s.

| condition (A ↔ Redis) | p50 | p99 | B's broadcasts at A | lost | twice or out of order |
| --- | ---: | ---: | ---: | ---: | ---: |
${rows.join("\n")}

## A partitioned from Redis for ${partitionMs / 1000} s, then healed

| | |
| --- | --- |
${partitionRows.join("\n")}
`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      repetitions: { type: "string" },
      results: { type: "string" },
    },
  });
  const why = whyNoNamespaces();
  if (why) {
    console.error(`bench/faults.ts cannot run here: ${why}`);
    process.exitCode = 1;
    return;
  }
  const repetitions = Number(values.repetitions ?? (values.quick ? 1 : 3));
  const ms = values.quick ? 5000 : 20_000;
  const partitionMs = 10_000;
  const runs: Repetition[] = [];
  for (let i = 0; i < repetitions; i++) {
    console.error(`faults: repetition ${i + 1} of ${repetitions}`);
    runs.push(await repetition(ms, partitionMs));
  }
  const file = values.results ?? join(root, "bench", "FAULTS.md");
  const written = page(runs, ms, partitionMs);
  await writeFile(file, written);
  if (!values.results) await putSection("faults", written.replace(/^#/gm, "##"));
  console.error(`faults: wrote ${file}`);
}

await main();
