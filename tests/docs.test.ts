// Every TypeScript and JavaScript block of README.md and docs/ runs, and type-checks.
import { execFile, spawn } from "node:child_process";
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NodeServer, serve } from "../adapters/node.ts";
import seed from "../examples/main.ts";

const root = resolve(import.meta.dirname, "..");
// Inside the package, so that `import ... from "socketapi"` resolves to this checkout.
const dir = join(root, "tests", ".snippets");

type Runtime = "node" | "bun" | "deno";

interface Snippet {
  name: string;
  file: string;
  lang: "ts" | "js";
  runtime: Runtime;
  code: string;
}

function runtimeOf(code: string): Runtime {
  if (/\bDeno\.|socketapi\/deno/.test(code)) return "deno";
  if (/\bBun\.|socketapi\/bun/.test(code)) return "bun";
  return "node";
}

async function collect(): Promise<Snippet[]> {
  const docs = (await readdir(join(root, "docs")))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`);
  const snippets: Snippet[] = [];
  for (const doc of ["README.md", ...docs]) {
    const text = await readFile(join(root, doc), "utf8");
    const blocks = [...text.matchAll(/^```(ts|typescript|js|javascript)\n([\s\S]*?)^```$/gm)];
    blocks.forEach((block, index) => {
      const lang = block[1]?.startsWith("t") ? "ts" : "js";
      const base = `${doc.replace(/[/.]/g, "_")}_${index + 1}`;
      const code = block[2] ?? "";
      snippets.push({
        name: `${doc} block ${index + 1}`,
        file: `${base}.${lang === "ts" ? "ts" : "mjs"}`,
        lang,
        runtime: runtimeOf(code),
        code,
      });
    });
  }
  return snippets;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

const commands: Record<Runtime, string[]> = {
  node: [process.execPath, "--experimental-websocket", "--no-warnings", "--import", "tsx"],
  bun: [join(root, "node_modules", ".bin", "bun")],
  deno: [join(root, "node_modules", ".bin", "deno"), "run", "-A"],
};

/** Runs a snippet on its runtime; a server still running after `settle` ms has started fine. */
function runSnippet(
  snippet: Snippet,
  settle = 2500,
): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const [command, ...args] = commands[snippet.runtime] as [string, ...string[]];
    const child = spawn(command, [...args, snippet.file], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      done({ code: 0, output: `${output}\n(still running after ${settle} ms: a server)` });
    }, settle);
    child.on("exit", (code) => {
      clearTimeout(timer);
      done({ code, output });
    });
  });
}

let snippets: Snippet[] = [];
let seedServer: NodeServer;

beforeAll(async () => {
  snippets = await collect();
  seedServer = await serve(seed, { port: 0 });
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await copyFile(join(root, "examples", "main.ts"), join(dir, "main.ts"));
  for (const snippet of snippets) {
    // Clients talk to the seed example started here; servers get a free port of their own
    // on loopback, so that the tests never take port 8000 or listen on the network.
    const port = snippet.code.includes("new WebSocket(") ? seedServer.port : await freePort();
    const code = snippet.code.replaceAll("8000", String(port)).replaceAll("0.0.0.0", "127.0.0.1");
    await writeFile(join(dir, snippet.file), code);
  }
  const denoFiles = snippets
    .filter((s) => s.runtime === "deno" && s.lang === "ts")
    .map((s) => s.file);
  await writeFile(
    join(dir, "tsconfig.json"),
    JSON.stringify({ extends: "../../tsconfig.json", include: ["*.ts"], exclude: denoFiles }),
  );
});

afterAll(async () => {
  await seedServer?.close();
});

describe("documentation", () => {
  it("has code blocks to check", () => {
    expect(snippets.length).toBeGreaterThan(15);
  });

  it("type-checks every TypeScript block", async () => {
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
    const result = await promisify(execFile)(process.execPath, [
      tsc,
      "-p",
      join(dir, "tsconfig.json"),
    ]).catch((error: { stdout: string }) => ({ stdout: error.stdout }));
    expect(result.stdout).toBe("");
  });

  it("type-checks every block for Deno with Deno's own types", async () => {
    const files = snippets
      .filter((s) => s.runtime === "deno" && s.lang === "ts")
      .map((s) => s.file);
    expect(files.length).toBeGreaterThan(0);
    const deno = join(root, "node_modules", ".bin", "deno");
    const result = await promisify(execFile)(deno, ["check", ...files], { cwd: dir }).then(
      () => ({ failed: "" }),
      (error: { stderr: string }) => ({ failed: error.stderr }),
    );
    expect(result.failed).toBe("");
  });

  it("runs every block without an error", { timeout: 120_000 }, async () => {
    const failures: string[] = [];
    const queue = [...snippets];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let snippet = queue.shift(); snippet; snippet = queue.shift()) {
          const { code, output } = await runSnippet(snippet);
          if (code !== 0) {
            failures.push(
              `${snippet.name} (${snippet.file} on ${snippet.runtime}) exited ${code}:\n${output}`,
            );
          }
        }
      }),
    );
    expect(failures).toEqual([]);
  });

  it("shows a client that gets its answer from the seed example", async () => {
    const client = snippets.find((s) => s.lang === "js" && s.code.includes("send_message"));
    expect(client).toBeDefined();
    const { code, output } = await runSnippet(client as Snippet, 5000);
    expect(code).toBe(0);
    expect(output).toContain("type: 'subscribed'");
    expect(output).toContain("status: 'completed'");
    expect(output).not.toContain("still running");
  });
});
