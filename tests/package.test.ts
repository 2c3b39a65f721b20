// npm and JSR publish the same entry points: npm the built JavaScript and declarations,
// JSR (and this repository, through tsconfig.json's paths) the TypeScript sources.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "..");
const read = (file: string) => JSON.parse(readFileSync(join(root, file), "utf8"));

const jsrExports: Record<string, string> = read("deno.json").exports;
const npmExports: Record<string, { types: string; import: string } | string> =
  read("package.json").exports;
const specifier = (subpath: string) =>
  subpath === "." ? "socketapi" : `socketapi/${subpath.slice(2)}`;

/** Every TypeScript file under src/, adapters/ and relays/, relative to the root. */
function sourceFiles(): string[] {
  return ["src", "adapters", "relays"].flatMap((dir) =>
    readdirSync(join(root, dir), { recursive: true, encoding: "utf8" })
      .filter((file) => file.endsWith(".ts"))
      .map((file) => `${dir}/${file}`),
  );
}

describe("package entry points", () => {
  it("publishes every source entry of deno.json, built, in package.json's exports", () => {
    for (const [subpath, source] of Object.entries(jsrExports)) {
      const built = source.replace(/^\.\//, "./dist/").replace(/\.ts$/, "");
      expect(npmExports[subpath], subpath).toEqual({
        types: `${built}.d.ts`,
        import: `${built}.js`,
      });
    }
    const npmSubpaths = Object.keys(npmExports).filter((subpath) => subpath !== "./package.json");
    expect(npmSubpaths).toEqual(Object.keys(jsrExports));
  });

  it("points every source entry at a file that exists", () => {
    for (const [subpath, file] of Object.entries(jsrExports)) {
      expect(existsSync(join(root, file)), `${subpath} -> ${file}`).toBe(true);
    }
  });

  it("maps every entry to its source in deno.json's imports and tsconfig.json's paths", () => {
    const imports: Record<string, string> = read("deno.json").imports;
    const paths: Record<string, string[]> = read("tsconfig.json").compilerOptions.paths;
    for (const [subpath, file] of Object.entries(jsrExports)) {
      expect(imports[specifier(subpath)], specifier(subpath)).toBe(file);
      expect(paths[specifier(subpath)], specifier(subpath)).toEqual([file]);
    }
  });

  it("names the peer dependencies an adapter needs as optional, and has two runtime dependencies, each loaded only where used", () => {
    const pkg = read("package.json");
    // valibot's converter, for app.asyncapi(): a dependency, so that every bundle (Workers)
    // resolves it, but only src/describe/ imports it, and the app loads that on demand.
    // ws: only socketapi/node imports it.
    expect(Object.keys(pkg.dependencies).sort()).toEqual(["@valibot/to-json-schema", "ws"]);
    for (const file of sourceFiles()) {
      if (file.startsWith("adapters/node") || file.startsWith("bench/")) continue;
      const text = readFileSync(join(root, file), "utf8");
      expect(/^import[^;]*?from\s+"ws"/m.test(text), `${file} imports ws`).toBe(false);
    }
    expect(read("deno.json").imports["@valibot/to-json-schema"]).toBe(
      `npm:@valibot/to-json-schema@${pkg.dependencies["@valibot/to-json-schema"]}`,
    );
    for (const file of sourceFiles()) {
      const text = readFileSync(join(root, file), "utf8");
      const statics = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"/gm)]
        .filter((match) => !/^\s*(?:import|export)\s+type\s/.test(match[0]))
        .map((match) => match[1] as string);
      const describes = statics.some(
        (specifier) => specifier === "@valibot/to-json-schema" || specifier.includes("describe/"),
      );
      if (!file.startsWith("src/describe/")) expect(describes, file).toBe(false);
    }
    expect(pkg.peerDependencies).toMatchObject({ valibot: expect.any(String) });
    for (const optional of ["hono", "tsx", "ioredis", "@nats-io/transport-node", "jose"]) {
      expect(pkg.peerDependenciesMeta[optional], optional).toEqual({ optional: true });
    }
    // socketapi/node's WebSocket server comes with the package: `npm install socketapi`
    // serves on Node with nothing else (its types are not in any entry's declarations).
    expect(pkg.dependencies.ws).toMatch(/^\^8\./);
  });
});
