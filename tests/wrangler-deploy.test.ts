// `wrangler deploy --dry-run` bundles the example Worker offline, Durable Object included.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { root } from "./helpers/server-process.ts";

it("bundles the example Worker with its Durable Object binding and migration", {
  timeout: 60_000,
}, async () => {
  const outdir = await mkdtemp(join(tmpdir(), "socketapi-deploy-"));
  try {
    const wrangler = join(root, "node_modules", ".bin", "wrangler");
    const { stdout } = await promisify(execFile)(
      wrangler,
      ["deploy", "--dry-run", "--outdir", outdir],
      {
        cwd: root,
        env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
      },
    );
    expect(stdout).toMatch(/env\.SOCKETAPI \(SocketAPIObject\)\s+Durable Object/);
    expect(stdout).toContain("--dry-run: exiting now.");
    const bundle = await readFile(join(outdir, "worker.js"), "utf8");
    expect(bundle).toContain("class SocketAPIObject");
    expect(bundle).toContain("add_numbers");
  } finally {
    await rm(outdir, { recursive: true, force: true });
  }
});
