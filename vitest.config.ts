import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    testTimeout: 15_000,
    hookTimeout: 30_000,
    projects: [
      {
        test: {
          name: "node",
          include: ["tests/**/*.test.ts"],
          exclude: ["tests/workers/**", "tests/.snippets/**"],
          testTimeout: 15_000,
          hookTimeout: 30_000,
          typecheck: {
            enabled: true,
            include: ["tests/**/*.test-d.ts"],
            tsconfig: "./tsconfig.json",
          },
        },
      },
      {
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
