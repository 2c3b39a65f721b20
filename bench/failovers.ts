// The broker failovers of tests/redis-cluster.test.ts, tests/redis-sentinel.test.ts and
// tests/nats-cluster.test.ts, run several times each against real servers: the median gap
// (time without delivery) and loss of each, as those tests measure and print them.
//
//   node --import tsx bench/failovers.ts [--runs 5]
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { runs: { type: "string", default: "5" } } });
const runs = Number(values.runs);

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
console.log(
  [
    "| failover | gap, median (ms) | min – max (ms) | runs |",
    "| --- | ---: | ---: | ---: |",
    ...rows,
  ].join("\n"),
);
