// The long scenarios' sections of bench/RESULTS.md: put in place, replaced, kept.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { putSection, sectionsOf } from "../bench/results-sections.ts";

it("appends a section, replaces it in its place, and gives back every section", async () => {
  const dir = await mkdtemp(join(tmpdir(), "socketapi-sections-"));
  try {
    const file = join(dir, "RESULTS.md");
    await writeFile(file, "# Results\n\nthe main table\n");
    await putSection("storm", "## Storm\n\nfirst $& run", file);
    await putSection("faults", "## Faults\n\nlossy", file);
    await putSection("storm", "## Storm\n\nsecond run", file);
    const page = await readFile(file, "utf8");
    expect(page).toBe(
      "# Results\n\nthe main table\n\n" +
        "<!-- begin storm -->\n## Storm\n\nsecond run\n<!-- end storm -->\n\n" +
        "<!-- begin faults -->\n## Faults\n\nlossy\n<!-- end faults -->\n",
    );
    expect(sectionsOf(`# A new page\n\n${sectionsOf(page)}`)).toBe(sectionsOf(page));
    expect(sectionsOf(page).split("<!-- begin")).toHaveLength(3);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
