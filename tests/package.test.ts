// npm and JSR publish the same entry points, and every one of them exists.
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "..");
const read = (file: string) => JSON.parse(readFileSync(join(root, file), "utf8"));

describe("package entry points", () => {
  const npmExports: Record<string, string> = read("package.json").exports;
  const jsrExports: Record<string, string> = read("deno.json").exports;

  it("lists the same subpaths with the same files in package.json and deno.json", () => {
    expect(jsrExports).toEqual(npmExports);
  });

  it("points every subpath at a file that exists", () => {
    for (const [subpath, file] of Object.entries(npmExports)) {
      expect(existsSync(join(root, file)), `${subpath} -> ${file}`).toBe(true);
    }
  });

  it("maps every subpath in deno.json's imports, so examples resolve the same on Deno", () => {
    const imports: Record<string, string> = read("deno.json").imports;
    for (const [subpath, file] of Object.entries(npmExports)) {
      const specifier = subpath === "." ? "socketapi" : `socketapi/${subpath.slice(2)}`;
      expect(imports[specifier], specifier).toBe(file);
    }
  });
});
