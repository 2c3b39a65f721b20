import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// `socketapi/...` resolves to the sources, as tsconfig.json's `paths` says (the package's
// `exports` point at dist/, built only for publishing).
const paths: Record<string, [string]> = JSON.parse(
  readFileSync(resolve(import.meta.dirname, "tsconfig.json"), "utf8"),
).compilerOptions.paths;
const alias = Object.entries(paths).map(([specifier, [file]]) => ({
  find: new RegExp(`^${specifier}$`),
  replacement: resolve(import.meta.dirname, file),
}));

export default defineConfig({
  resolve: { alias },
  test: {
    testTimeout: 15_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          name: "node",
          include: ["tests/**/*.test.ts"],
          exclude: ["tests/workers/**", "tests/.snippets/**"],
          testTimeout: 15_000,
          hookTimeout: 30_000,
          typecheck: {
            enabled: true,
            // TypeScript 7, by path: node_modules/.bin/tsc may be TypeScript 5's (the
            // consumer test's `typescript5` has a `tsc` too).
            checker: resolve(import.meta.dirname, "node_modules", "typescript", "bin", "tsc"),
            include: ["tests/**/*.test-d.ts"],
            tsconfig: "./tsconfig.json",
          },
        },
      },
      {
        extends: true,
        plugins: [cloudflareTest({ wrangler: { configPath: "./tests/workers/wrangler.toml" } })],
        test: {
          name: "workers",
          include: ["tests/workers/**/*.test.ts"],
          testTimeout: 15_000,
        },
      },
    ],
  },
});
