// Every TypeScript and JavaScript block of README.md and docs/ runs, on its runtime, and
// type-checks, with that runtime's own types.
import { execFile } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NodeServer, serve } from "../adapters/node.ts";
import seed from "../examples/main.ts";
import { type Broker, startNats, startRedis } from "./helpers/brokers.ts";
import { collectSnippets, type Runtime, runSnippet, type Snippet } from "./helpers/doc-snippets.ts";
import { freePort, root } from "./helpers/server-process.ts";

// Inside the package, so that `import ... from "socketapi"` resolves to this checkout.
const dir = join(root, "tests", ".snippets");
/** The port each server block was given (`8000` in the docs), and how to give it another. */
const ports = new Map<Snippet, number>();
async function onAnotherPort(snippet: Snippet): Promise<Snippet> {
  const file = join(dir, snippet.file);
  const port = await freePort();
  const code = (await readFile(file, "utf8")).replaceAll(String(ports.get(snippet)), String(port));
  ports.set(snippet, port);
  await writeFile(file, code);
  return snippet;
}

let snippets: Snippet[] = [];
let seedServer: NodeServer;
/** The brokers the scaling guide's blocks connect to, instead of the machine's. */
let brokers: Broker[] = [];
const filesFor = (runtime: Runtime) =>
  snippets.filter((s) => s.runtime === runtime && s.lang === "ts").map((s) => s.file);

beforeAll(async () => {
  snippets = await collectSnippets();
  seedServer = await serve(seed, { port: 0 });
  brokers = await Promise.all([startRedis(), startNats()]);
  const [redis, nats] = brokers as [Broker, Broker];
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  // The blocks import the seed example as ./main.ts: the README's own block of it.
  await writeFile(join(dir, "main.ts"), seedBlock(snippets).code);
  for (const snippet of snippets) {
    // Clients talk to the seed example started here; servers get a free port of their own
    // on loopback, so that the tests never take port 8000 or listen on the network.
    const client =
      snippet.code.includes("new WebSocket(") || snippet.code.includes("createClient<");
    const port = client ? seedServer.port : await freePort();
    ports.set(snippet, port);
    const code = snippet.code
      .replaceAll("8000", String(port))
      .replaceAll("0.0.0.0", "127.0.0.1")
      .replaceAll("redis://127.0.0.1:6379", redis.url)
      .replaceAll("nats://127.0.0.1:4222", nats.url);
    await writeFile(join(dir, snippet.file), code);
  }
  // `socketapi/...` resolves to the sources, as in the repository's own vitest config.
  const paths: Record<string, [string]> = JSON.parse(
    await readFile(join(root, "tsconfig.json"), "utf8"),
  ).compilerOptions.paths;
  const alias = Object.entries(paths).map(([specifier, [file]]) => ({
    find: `^${specifier}$`,
    replacement: join(root, file),
  }));
  await writeFile(
    join(dir, "vitest.snippets.config.mjs"),
    `const alias = ${JSON.stringify(alias)}.map(({ find, replacement }) => ({ find: new RegExp(find), replacement }));
export default { resolve: { alias }, test: { include: ["*.test.ts"], typecheck: { enabled: false } } };
`,
  );
  const base = { extends: "../../tsconfig.json", exclude: [] as string[] };
  await writeFile(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      ...base,
      include: ["*.ts"],
      exclude: [...filesFor("deno"), ...filesFor("workers")],
    }),
  );
  await writeFile(
    join(dir, "tsconfig.workers.json"),
    JSON.stringify({
      ...base,
      compilerOptions: { lib: ["ES2023"], types: ["@cloudflare/workers-types"] },
      include: filesFor("workers"),
    }),
  );
});

afterAll(async () => {
  await seedServer?.close();
  await Promise.all(brokers.map((broker) => broker.kill()));
});

/** The README's block of the seed example, which the other blocks import as ./main.ts. */
function seedBlock(all: Snippet[]): Snippet {
  const block = all.find(
    (s) => s.name.startsWith("README.md") && s.code.includes('.action(\n    "add_numbers"'),
  );
  if (!block) throw new Error("README.md has no block of the seed example");
  return block;
}

describe("documentation", () => {
  it("shows the seed example as examples/main.ts has it (but for its comment)", async () => {
    const lines = (text: string) =>
      text
        .replace(/^\/\*\*[\s\S]*?\*\/\n/, "")
        .split("\n")
        .filter((line) => line.trim() !== "")
        .sort();
    const example = await readFile(join(root, "examples", "main.ts"), "utf8");
    expect(lines(seedBlock(snippets).code)).toEqual(lines(example));
  });

  it("has code blocks to check, for every runtime", () => {
    expect(snippets.length).toBeGreaterThan(20);
    for (const runtime of ["node", "bun", "deno", "workers", "vitest"] as const) {
      expect(filesFor(runtime).length, runtime).toBeGreaterThan(0);
    }
  });

  it.each(["tsconfig.json", "tsconfig.workers.json"])(
    "type-checks every TypeScript block (%s)",
    async (config) => {
      const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
      const result = await promisify(execFile)(process.execPath, [
        tsc,
        "-p",
        join(dir, config),
      ]).catch((error: { stdout: string }) => ({ stdout: error.stdout }));
      expect(result.stdout).toBe("");
    },
  );

  it("type-checks every block for Deno with Deno's own types", async () => {
    const deno = join(root, "node_modules", ".bin", "deno");
    const result = await promisify(execFile)(deno, ["check", ...filesFor("deno")], {
      cwd: dir,
    }).then(
      () => ({ failed: "" }),
      (error: { stderr: string }) => ({ failed: error.stderr }),
    );
    expect(result.failed).toBe("");
  });

  it("runs every block without an error", { timeout: 180_000 }, async () => {
    const failures: string[] = [];
    const queue = [...snippets];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let snippet = queue.shift(); snippet; snippet = queue.shift()) {
          let { code, output } = await runSnippet(dir, snippet);
          // Its port was free when the blocks were written, a while ago: another test's
          // socket may have been given it since. Another free port, and again.
          for (let tries = 0; code !== 0 && output.includes("EADDRINUSE") && tries < 3; tries++) {
            ({ code, output } = await runSnippet(dir, await onAnotherPort(snippet)));
          }
          if (code !== 0)
            failures.push(
              `${snippet.name} (${snippet.file} on ${snippet.runtime}) exited ${code}:\n${output}`,
            );
        }
      }),
    );
    expect(failures).toEqual([]);
  });

  it("shows the typed client calling the seed example, as the README says", async () => {
    const readme = snippets.find(
      (s) => s.name.startsWith("README.md") && s.code.includes("createClient<"),
    );
    expect(readme).toBeDefined();
    const { code, output } = await runSnippet(dir, readme as Snippet, 5000);
    expect(code).toBe(0);
    expect(output).toContain("8\n");
    expect(output).toContain("chat: Hello everyone!");
    expect(output).not.toContain("still running");
  });

  it("shows a client that gets its answer from the seed example", async () => {
    const client = snippets.find((s) => s.lang === "js" && s.code.includes("send_message"));
    expect(client).toBeDefined();
    const { code, output } = await runSnippet(dir, client as Snippet, 5000);
    expect(code).toBe(0);
    expect(output).toContain("type: 'subscribed'");
    expect(output).toContain("status: 'completed'");
    expect(output).not.toContain("still running");
  });
});
