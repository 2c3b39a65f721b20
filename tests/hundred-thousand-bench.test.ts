// The 100,000-connection scenario's harness keeps working (the long run is
// `npm run bench -- --hundred-thousand-only`): at 400 connections over two workers and two
// load processes, each from its own loopback address, every broadcast reaches every
// connection across the workers, for the limit (ws in node:cluster), SocketAPI's --workers
// and Socket.IO's cluster adapter alike. No timing is asserted: benchmarks are not tests.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import type { CrowdResult } from "../bench/hundred-thousand/run.ts";
import { root } from "./helpers/server-process.ts";

it("connects, broadcasts to all across the workers and counts round trips, for every subject", {
  timeout: 150_000,
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), "socketapi-crowd-"));
  try {
    const json = join(dir, "crowd.json");
    await promisify(execFile)(
      process.execPath,
      [
        ...["--import", "tsx", "bench/hundred-thousand/run.ts"],
        ...["--connections", "400", "--workers", "2", "--processes", "2", "--action-seconds", "2"],
        ...["--json", json, "--results", join(dir, "crowd.md")],
      ],
      { cwd: root, timeout: 140_000 },
    );
    const results = JSON.parse(await readFile(json, "utf8")) as CrowdResult[];
    expect(results.map((r) => r.subject)).toEqual([
      "raw ws, node:cluster",
      "socketapi, --workers",
      "socket.io, cluster adapter",
    ]);
    for (const result of results) {
      expect(result.connections).toBe(400);
      // Each of the five broadcasts was delivered to all 400 (the load processes answer
      // only then), so each has a time.
      expect(result.broadcastRuns).toHaveLength(5);
      for (const ms of result.broadcastRuns) expect(ms).toBeGreaterThanOrEqual(0);
      expect(result.connectRate).toBeGreaterThan(0);
      expect(result.actions).toBeGreaterThan(0);
      // The servers' memory was read, primary and workers (at 400 connections, a
      // collection may leave it lower after connecting than before).
      expect(result.rssBefore).toBeGreaterThan(3 * 30 * 2 ** 20);
    }
    expect(await readFile(join(dir, "crowd.md"), "utf8")).toContain(
      "| socketapi, --workers | 400 |",
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
