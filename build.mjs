// Builds what npm publishes: ESM JavaScript and .d.ts declarations in dist/, compiled by the
// project's TypeScript from src/ and adapters/ (the Workers adapter with the Workers types).
// The sources import each other with `.ts` extensions, as Deno and JSR need; the compiler
// rewrites them to `.js` in the JavaScript but not in the declarations, so this does.
//
//   node build.mjs          (npm run build; also run by `npm pack` and `npm publish`)
//   node build.mjs --clean  removes dist/
import { execFileSync } from "node:child_process";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";

const root = import.meta.dirname;
const dist = join(root, "dist");
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");

await rm(dist, { recursive: true, force: true });
// `--clean` only removes dist/: the lint step checks the build, then leaves the repository
// running its sources, so that nothing in it can quietly depend on a stale build.
if (process.argv.includes("--clean")) process.exit(0);
for (const project of ["tsconfig.build.json", "tsconfig.build.workers.json"]) {
  execFileSync(process.execPath, [tsc, "-p", project], { cwd: root, stdio: "inherit" });
}

/** Every file under `dir`. */
async function files(dir) {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => resolve(e.parentPath, e.name));
}

// `from "./x.ts"`, `import("./x.ts")` and `import "./x.ts"` with a relative specifier.
const tsSpecifier = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])(\.{1,2}\/[^"']*?)\.ts\2/g;
let rewritten = 0;
for (const file of await files(dist)) {
  if (!file.endsWith(".d.ts")) continue;
  const text = await readFile(file, "utf8");
  // Line by line, leaving JSDoc examples (` * import ... "./main.ts"`) as written.
  const fixed = text
    .split("\n")
    .map((line) =>
      /^\s*\*/.test(line)
        ? line
        : line.replace(tsSpecifier, (_, head, quote, path) => {
            rewritten++;
            return `${head}${quote}${path}.js${quote}`;
          }),
    )
    .join("\n");
  if (fixed !== text) await writeFile(file, fixed);
}
console.log(`built dist/ (${rewritten} declaration imports pointed at .js)`);
