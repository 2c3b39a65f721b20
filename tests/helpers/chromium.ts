import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

/** Where Debian's chromium lives; `npx playwright install` cannot work on this machine. */
export const CHROMIUM = "/usr/bin/chromium";

/**
 * Debian's chromium, installed with apt-get when missing and the tests run as root (as in
 * CI, so that a fresh clone needs nothing installed by hand). `undefined` when it is
 * neither there nor installable.
 */
export function ensureChromium(): string | undefined {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  if (process.getuid?.() !== 0) return undefined;
  try {
    execFileSync("apt-get", ["update"], { stdio: "ignore", timeout: 300_000 });
    execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "chromium"], {
      stdio: "ignore",
      timeout: 600_000,
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  } catch {
    return undefined;
  }
  return existsSync(CHROMIUM) ? CHROMIUM : undefined;
}

/** Flags for a headless chromium on a machine with no network but loopback. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
];
