// The long scenarios' tables in bench/RESULTS.md: each of bench/storm/run.ts,
// bench/faults.ts and bench/hundred-thousand/run.ts writes its own page and, in a full
// run, its table into a marked section of RESULTS.md; bench/run.ts keeps those sections
// when it writes the page again.
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";

const results = join(resolve(import.meta.dirname), "RESULTS.md");
const section = /<!-- begin (\S+) -->\n[\s\S]*?<!-- end \1 -->\n/g;

/** The marked sections of `page`, in order. */
export function sectionsOf(page: string): string {
  return [...page.matchAll(section)].map(([text]) => text).join("\n");
}

/** Puts `markdown` as section `name` of `file` (bench/RESULTS.md), in its place or at the end. */
export async function putSection(name: string, markdown: string, file = results): Promise<void> {
  const page = existsSync(file) ? await readFile(file, "utf8") : "";
  const text = `<!-- begin ${name} -->\n${markdown.trim()}\n<!-- end ${name} -->\n`;
  const marked = new RegExp(`<!-- begin ${name} -->\\n[\\s\\S]*?<!-- end ${name} -->\\n`);
  await writeFile(
    file,
    marked.test(page) ? page.replace(marked, () => text) : `${page.trimEnd()}\n\n${text}`,
  );
}
