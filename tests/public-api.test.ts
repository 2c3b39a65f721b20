// Each entry point's exports, as a list that a change to the public API shows in a diff:
// every name, a value or only a type, read by TypeScript from the entry's source.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript5";
import { describe, expect, it } from "vitest";
import { root } from "./helpers/server-process.ts";

const entries: Record<string, string> = JSON.parse(
  readFileSync(join(root, "deno.json"), "utf8"),
).exports;

/** The names `file` exports: `name` for a value (and its type), `type name` for a type only. */
function exportsOf(file: string): string[] {
  const program = ts.createProgram([file], {
    allowImportingTsExtensions: true,
    noEmit: true,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    target: ts.ScriptTarget.ES2022,
    types: [],
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  const module = source && checker.getSymbolAtLocation(source);
  if (!module) throw new Error(`no module at ${file}`);
  return checker
    .getExportsOfModule(module)
    .map((symbol) => {
      const target =
        symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
      // `export type { X }` of a class exports its type only.
      const typeOnly = symbol.declarations?.some(
        (declaration) =>
          ts.isExportSpecifier(declaration) &&
          (declaration.isTypeOnly || declaration.parent.parent.isTypeOnly),
      );
      const value = !typeOnly && (target.flags & ts.SymbolFlags.Value) !== 0;
      return value ? symbol.name : `type ${symbol.name}`;
    })
    .sort((a, b) => a.replace(/^type /, "").localeCompare(b.replace(/^type /, "")));
}

describe("the public API", () => {
  it.each(Object.entries(entries))("of %s is this list", (subpath, source) => {
    expect(exportsOf(join(root, source))).toMatchSnapshot(subpath);
  });
});
