// The benchmark harness keeps working: a smoke run with tiny sizes writes its JSON. No
// timing is asserted here; benchmarks are not tests.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { root } from "./helpers/server-process.ts";

it("runs every subject on every runtime and writes the JSON the README promises", {
  timeout: 170_000,
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), "socketapi-bench-"));
  try {
    const json = join(dir, "bench.json");
    await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", "bench/run.ts", "--smoke", "--json", json],
      {
        cwd: root,
        timeout: 160_000,
      },
    );
    const { machine, results } = JSON.parse(await readFile(json, "utf8"));
    expect(machine).toMatchObject({
      cpus: expect.any(Number),
      node: process.version,
      mode: "smoke",
    });
    const subjects = new Set(
      results.map((r: { runtime: string; subject: string }) => `${r.runtime} ${r.subject}`),
    );
    expect([...subjects].sort()).toEqual([
      "bun crossws",
      "bun raw",
      "bun socketapi",
      "deno raw",
      "deno socketapi",
      "node crossws",
      "node raw",
      "node raw-naive",
      "node socket.io",
      "node socket.io over redis",
      "node socket.io over redis cluster (sharded adapter)",
      "node socketapi",
      "node socketapi + otel metrics",
      "node socketapi + otel traces",
      "node socketapi over nats",
      "node socketapi over redis",
      "node socketapi over redis cluster",
    ]);
    const scenarios = new Set(results.map((r: { scenario: string }) => r.scenario));
    expect([...scenarios]).toEqual([
      "connect rate",
      "memory per connection at scale",
      "memory per subscribed connection",
      "heap per subscribed connection",
      "broadcast to all, until the last delivery",
      "actions while all are connected",
      "fan-out across processes",
      "latency across processes p50",
      "latency across processes p99",
      "messages to an instance without subscribers",
      "stream chunks",
      "fan-out with history",
      "recovery of 1,000 missed broadcasts",
      "presence: all joins heard",
      "presence: all leaves heard",
      "presence: frames sent in the storm",
      "memory per open stream",
      "heap per open stream",
      "stream cancel to finally p50",
      "stream cancel to finally p99",
      "actions",
      "latency p50",
      "latency p99",
      "fan-out",
      "memory per connection",
      "heap per connection",
      "memory per subscription",
      "heap per subscription",
    ]);
    for (const result of results) {
      expect(result).toEqual({
        scenario: expect.any(String),
        runtime: expect.any(String),
        subject: expect.any(String),
        unit: expect.any(String),
        median: expect.any(Number),
        min: expect.any(Number),
        max: expect.any(Number),
        runs: [expect.any(Number)],
      });
      if (
        [
          "actions",
          "fan-out",
          "fan-out across processes",
          "fan-out with history",
          "recovery of 1,000 missed broadcasts",
          "connect rate",
          "broadcast to all, until the last delivery",
          "actions while all are connected",
          "stream chunks",
        ].includes(result.scenario)
      )
        expect(result.median).toBeGreaterThan(0);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it("measures what the dashboard costs (bench/admin.ts, short): three ways, each with its CPU per action and delivery", {
  timeout: 120_000,
}, async () => {
  const page = join(tmpdir(), `admin-bench-${process.pid}.md`);
  await promisify(execFile)(
    process.execPath,
    ["--import", "tsx", "bench/admin.ts", "--quick", "--results", page],
    {
      cwd: root,
      timeout: 110_000,
    },
  );
  const text = await readFile(page, "utf8");
  for (const way of ["no admin", "admin, nobody watching", "admin, one page watching"]) {
    expect(text).toMatch(
      new RegExp(
        `\\| ${way} \\| [\\d,]+ \\| [\\d.]+ \\| [\\d.]+ \\| [\\d,]+ \\| [\\d.]+ \\| [\\d.]+ \\|`,
      ),
    );
  }
});
