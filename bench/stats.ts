// What the benchmarks share to summarize their runs: medians and spreads of repetitions,
// and a process's memory and CPU time read from /proc (Linux).
import { readFileSync } from "node:fs";

/** The median of `values` (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** `median (min–max)` of `values`, with `unit`, in whole numbers (or `digits` decimals). */
export function spread(values: readonly number[], unit = "", digits = 0): string {
  const fmt = (n: number) =>
    n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const min = Math.min(...values);
  const max = Math.max(...values);
  return values.length > 1 && min !== max
    ? `${fmt(median(values))}${unit} (${fmt(min)}–${fmt(max)})`
    : `${fmt(median(values))}${unit}`;
}

/** The resident memory of process `pid` in bytes; 0 when it is gone. */
export function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** RSS (bytes) and CPU time, user and system (ms, in 10 ms ticks), of a process. */
export function usageOf(pid: number): { rss: number; cpuMs: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { rss: rssOf(pid), cpuMs: ticks * 10 };
  } catch {
    return undefined;
  }
}
