// The broker failovers of tests/redis-cluster.test.ts, tests/redis-sentinel.test.ts and
// tests/nats-cluster.test.ts, run several times each against real servers: the median gap
// (time without delivery) and loss of each, as those tests measure and print them.
//
//   npm run bench:failovers [-- --runs 5] [--results FILE]
//
// Writes bench/FAILOVERS.md (or FILE), and prints the table.
import { spawnSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { runs: { type: "string", default: "5" }, results: { type: "string" } },
});
const runs = Number(values.runs);
const root = resolve(import.meta.dirname, "..");

/** Each failover: the test that makes it, and what its line says (gap in ms, then more). */
const FAILOVERS = [
  {
    name: "Redis Cluster: a primary killed mid-broadcast",
    file: "tests/redis-cluster.test.ts",
    test: "flows again after a primary dies",
    line: /primary killed: no delivery for (\d+) ms, (\d+) broadcasts lost/,
  },
  {
    name: "Redis Cluster: a slot moved under live subscribers",
    file: "tests/redis-cluster.test.ts",
    test: "moves a slot",
    line: /slot moved: broadcasts reached the subscriber again after (\d+) ms/,
  },
  {
    name: "Sentinel: the primary stopped (SIGSTOP)",
    file: "tests/redis-sentinel.test.ts",
    test: "follows a failover",
    line: /Sentinel failover: no delivery for (\d+) ms/,
  },
  {
    name: "NATS cluster: the instance's node killed",
    file: "tests/nats-cluster.test.ts",
    test: "moves an instance",
    line: /NATS node killed: no delivery for (\d+) ms; sent (\d+), received (\d+), lost \(counted\) (\d+)/,
  },
];

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
};

const rows: string[] = [];
for (const failover of FAILOVERS) {
  const gaps: number[] = [];
  for (let run = 0; run < runs; run++) {
    const result = spawnSync(
      "node_modules/.bin/vitest",
      ["run", failover.file, "-t", failover.test, "--typecheck.enabled=false"],
      { encoding: "utf8", timeout: 180_000 },
    );
    const match = failover.line.exec(result.stdout + result.stderr);
    if (result.status !== 0 || !match) {
      throw new Error(`${failover.name}: run ${run + 1} failed\n${result.stdout}${result.stderr}`);
    }
    gaps.push(Number(match[1]));
    process.stderr.write(`  ${failover.name}: ${match[0]}\n`);
  }
  rows.push(
    `| ${failover.name} | ${median(gaps)} | ${Math.min(...gaps)} – ${Math.max(...gaps)} | ${runs} |`,
  );
}
const table = [
  "| failover | gap, median (ms) | min – max (ms) | runs |",
  "| --- | ---: | ---: | ---: |",
  ...rows,
].join("\n");
const day = new Date().toISOString().slice(0, 10);
const page = `# Broker failovers

Produced by \`npm run bench:failovers\` on ${day}; the machine: ${cpus().length} × ${
  cpus()[0]?.model.split(" ").slice(0, 2).join(" ") ?? "?"
}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}.

Each failover test of \`npm test\` (tests/redis-cluster.test.ts, tests/redis-sentinel.test.ts,
tests/nats-cluster.test.ts) run ${runs} times against real servers it starts: while an
instance broadcasts every 10-20 ms, the broker is broken (a Redis Cluster primary killed,
its replica taking over with \`cluster-node-timeout\` 1 s; a slot moved with SETSLOT and
MIGRATE under live subscribers; the Sentinel-watched primary stopped with SIGSTOP,
\`down-after-milliseconds\` 1 s; the NATS node of the sending instance killed). The gap is
the longest time between two deliveries to a subscriber of another instance from the
failure on (for the slot move: from the move to the first delivery after it). What each
loses, and how it is told, is in
[docs/scaling.md](../docs/scaling.md#during-a-failover).

${table}
`;
await writeFile(values.results ?? join(root, "bench", "FAILOVERS.md"), page);
console.log(table);
