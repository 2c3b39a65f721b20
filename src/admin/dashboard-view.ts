// What the page is sent every second: the instances of the cluster (each one's latest
// sample), what they counted together since the last view, latencies per action over the
// last ten views, and the busiest channel templates and presence summed over instances.

import type { InstanceSample, RelaySample, TemplateCount } from "./instance-sample.ts";
import { MAX_SAMPLE_TEMPLATES } from "./instance-sample.ts";
import { addHistogram, LATENCY_BUCKETS, quantileMs } from "./latency.ts";
import { MAX_TALLY_KEYS, OTHER_KEY, type TallyCounts } from "./tally.ts";

/** How many views the latency quantiles are read over (about ten seconds). */
export const LATENCY_WINDOW = 10;

/** One instance in the view. */
export interface InstanceRow {
  id: string;
  runtime: string;
  /** Whether it is the instance that serves this page. */
  here: boolean;
  uptime: number;
  connections: number;
  subscriptions: number;
  memory: { rss: number; heapUsed: number } | null;
  history: { streams: number; bytes: number } | "shared" | null;
  relay: RelaySample | null;
}

/** What every instance counted together since the last view (latencies are read apart). */
export type ViewCounts = Omit<TallyCounts, "actions"> & {
  actions: Record<string, { count: number; errors: number }>;
};

/** What the page is sent. */
export interface DashboardView {
  at: number;
  instances: InstanceRow[];
  connections: number;
  subscriptions: number;
  counts: ViewCounts;
  /** Per action, over the last {@link LATENCY_WINDOW} views: answers and their p50/p99 in ms. */
  latency: Record<string, { count: number; p50: number | null; p99: number | null }>;
  templates: TemplateCount[];
  presence: [template: string, members: number][];
}

/** Builds views from the samples of this instance and the others. */
export class ViewBuilder {
  readonly #window: Map<string, number[]>[] = [];

  /**
   * The view of `own` (this instance, sampled now), `fresh` (the other instances' samples
   * received since the last view: their counts are added) and `latest` (each listed
   * instance's last sample: what they hold now); `own` is listed unless `listOwn` is false
   * (a Worker, which holds no connection, only asks the objects that do).
   */
  build(
    own: InstanceSample,
    fresh: readonly InstanceSample[],
    latest: readonly InstanceSample[],
    listOwn = true,
  ): DashboardView {
    const counted = [own, ...fresh];
    const counts: ViewCounts = {
      ms: own.counts.ms,
      received: 0,
      sent: 0,
      opened: 0,
      closed: 0,
      chunks: 0,
      cancelled: 0,
      errors: {},
      refusals: {},
      actions: {},
    };
    const latencies = new Map<string, number[]>();
    for (const { counts: c } of counted) {
      counts.received += c.received;
      counts.sent += c.sent;
      counts.opened += c.opened;
      counts.closed += c.closed;
      counts.chunks += c.chunks;
      counts.cancelled += c.cancelled;
      addCounts(counts.errors, c.errors);
      addCounts(counts.refusals, c.refusals);
      for (const [name, action] of Object.entries(c.actions)) {
        const key = keyFor(counts.actions, name);
        const into = counts.actions[key] ?? { count: 0, errors: 0 };
        counts.actions[key] = into;
        into.count += action.count;
        into.errors += action.errors;
        let histogram = latencies.get(key);
        if (!histogram) {
          histogram = new Array<number>(LATENCY_BUCKETS).fill(0);
          latencies.set(key, histogram);
        }
        addHistogram(histogram, action.latency);
      }
    }
    this.#window.push(latencies);
    if (this.#window.length > LATENCY_WINDOW) this.#window.shift();
    const merged = new Map<string, number[]>();
    for (const view of this.#window) {
      for (const [name, histogram] of view) {
        const into = merged.get(name);
        if (!into) merged.set(name, [...histogram]);
        else
          histogram.forEach((count, bucket) => {
            into[bucket] = (into[bucket] ?? 0) + count;
          });
      }
    }
    const latency: DashboardView["latency"] = {};
    for (const [name, histogram] of merged) {
      latency[name] = {
        count: histogram.reduce((sum, count) => sum + count, 0),
        p50: quantileMs(histogram, 0.5) ?? null,
        p99: quantileMs(histogram, 0.99) ?? null,
      };
    }
    const others = latest.filter((sample) => sample.id !== own.id);
    const listed = listOwn ? [own, ...others] : others;
    const templates = new Map<string, [number, number]>();
    const presence = new Map<string, number>();
    for (const sample of listed) {
      for (const [template, subscribers, channels] of sample.templates) {
        const into = templates.get(template) ?? [0, 0];
        templates.set(template, [into[0] + subscribers, into[1] + channels]);
      }
      for (const [template, members] of sample.presence) {
        presence.set(template, (presence.get(template) ?? 0) + members);
      }
    }
    return {
      at: own.at,
      instances: listed.map((sample) => ({
        id: sample.id,
        runtime: sample.runtime,
        here: sample === own,
        uptime: Math.max(0, Math.round((own.at - sample.startedAt) / 1000)),
        connections: sample.connections,
        subscriptions: sample.subscriptions,
        memory: sample.memory,
        history: sample.history,
        relay: sample.relay,
      })),
      connections: listed.reduce((sum, sample) => sum + sample.connections, 0),
      subscriptions: listed.reduce((sum, sample) => sum + sample.subscriptions, 0),
      counts,
      latency,
      templates: [...templates]
        .map(
          ([template, [subscribers, channels]]): TemplateCount => [template, subscribers, channels],
        )
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .slice(0, MAX_SAMPLE_TEMPLATES),
      presence: [...presence]
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .slice(0, MAX_SAMPLE_TEMPLATES),
    };
  }
}

/** The key `name` is counted under in `counts`: itself, or `(other)` once it is full. */
function keyFor(counts: Record<string, unknown>, name: string): string {
  if (Object.hasOwn(counts, name) || Object.keys(counts).length < MAX_TALLY_KEYS) return name;
  return OTHER_KEY;
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [key, count] of Object.entries(from)) {
    if (typeof count !== "number") continue;
    const at = keyFor(into, key);
    into[at] = (into[at] ?? 0) + count;
  }
}
