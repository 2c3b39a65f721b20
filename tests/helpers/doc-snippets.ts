import { execFile, spawn } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { Miniflare } from "miniflare";
import { root } from "./server-process.ts";

/** Where a snippet runs. */
export type Runtime = "node" | "bun" | "deno" | "workers" | "vitest";

/** One code block of README.md or docs/. */
export interface Snippet {
  name: string;
  file: string;
  lang: "ts" | "js";
  runtime: Runtime;
  code: string;
}

/** The outcome of running a snippet. */
export interface Run {
  code: number | null;
  output: string;
}

function runtimeOf(code: string): Runtime {
  if (code.includes('from "vitest"')) return "vitest";
  if (code.includes("socketapi/cloudflare")) return "workers";
  if (/\bDeno\.|socketapi\/deno/.test(code)) return "deno";
  if (/\bBun\.|socketapi\/bun/.test(code)) return "bun";
  return "node";
}

/** Every TypeScript and JavaScript block of README.md and docs/*.md. */
export async function collectSnippets(): Promise<Snippet[]> {
  const docs = (await readdir(join(root, "docs")))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`);
  const snippets: Snippet[] = [];
  for (const doc of ["README.md", ...docs]) {
    const text = await readFile(join(root, doc), "utf8");
    const blocks = [...text.matchAll(/^```(ts|typescript|js|javascript)\n([\s\S]*?)^```$/gm)];
    blocks.forEach((block, index) => {
      const lang = block[1]?.startsWith("t") ? "ts" : "js";
      const code = block[2] ?? "";
      const runtime = runtimeOf(code);
      const extension = lang === "js" ? "mjs" : runtime === "vitest" ? "test.ts" : "ts";
      snippets.push({
        name: `${doc} block ${index + 1}`,
        file: `${doc.replace(/[/.]/g, "_")}_${index + 1}.${extension}`,
        lang,
        runtime,
        code,
      });
    });
  }
  return snippets;
}

const commands: Record<Exclude<Runtime, "workers">, string[]> = {
  node: [process.execPath, "--experimental-websocket", "--no-warnings", "--import", "tsx"],
  // A test file from the docs, run by vitest with a config that only picks it.
  vitest: [
    process.execPath,
    join(root, "node_modules", "vitest", "vitest.mjs"),
    "run",
    "--config",
    "vitest.snippets.config.mjs",
    "--dir",
    ".",
  ],
  bun: [join(root, "node_modules", ".bin", "bun")],
  deno: [join(root, "node_modules", ".bin", "deno"), "run", "-A"],
};

/** Runs a snippet in `dir` on its runtime; a server still running after `settle` ms started fine. */
export function runSnippet(dir: string, snippet: Snippet, settle = 2500): Promise<Run> {
  if (snippet.runtime === "workers") return runWorkerSnippet(dir, snippet);
  const [command, ...args] = commands[snippet.runtime] as [string, ...string[]];
  return new Promise((done) => {
    const child = spawn(command, [...args, snippet.file], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
    });
    child.stderr.on("data", (chunk) => {
      output += chunk;
    });
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

/**
 * Runs a Worker snippet as Cloudflare would: bundled by `wrangler deploy --dry-run`, then
 * loaded in workerd (Miniflare) with its Durable Object, and sent a WebSocket upgrade.
 */
async function runWorkerSnippet(dir: string, snippet: Snippet): Promise<Run> {
  const base = snippet.file.replace(/\.ts$/, "");
  const config = join(dir, `${base}.wrangler.toml`);
  await writeFile(
    config,
    [
      `name = "${base.toLowerCase().replaceAll("_", "-")}"`,
      `main = "${snippet.file}"`,
      'compatibility_date = "2026-04-20"',
      'compatibility_flags = ["no_web_socket_compression"]',
      "[[durable_objects.bindings]]",
      'name = "SOCKETAPI"',
      'class_name = "SocketAPIObject"',
      "[[migrations]]",
      'tag = "v1"',
      'new_sqlite_classes = ["SocketAPIObject"]',
    ].join("\n"),
  );
  const outdir = join(dir, `${base}-bundle`);
  const wrangler = join(root, "node_modules", ".bin", "wrangler");
  try {
    await promisify(execFile)(
      wrangler,
      ["deploy", "--dry-run", "--outdir", outdir, "--config", config],
      {
        cwd: dir,
        env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
      },
    );
  } catch (error) {
    return { code: 1, output: String((error as { stderr?: string }).stderr ?? error) };
  }
  const mf = new Miniflare({
    modules: true,
    // wrangler names the bundle after the entry file.
    scriptPath: join(outdir, `${base}.js`),
    compatibilityDate: "2026-04-20",
    // As docs/cloudflare.md's wrangler.toml says.
    compatibilityFlags: ["no_web_socket_compression"],
    durableObjects: { SOCKETAPI: "SocketAPIObject" },
  });
  try {
    const path = /\.get\("([^"]+)", socketapi\(/.exec(snippet.code)?.[1] ?? "/";
    const response = await mf.dispatchFetch(`http://localhost${path}`, {
      headers: { upgrade: "websocket" },
    });
    const ws = response.webSocket;
    if (response.status !== 101 || !ws)
      return { code: 1, output: `the upgrade got HTTP ${response.status}` };
    ws.accept();
    ws.close(1000);
    return { code: 0, output: "upgraded in workerd" };
  } finally {
    await mf.dispose();
  }
}
