// One instance as the dashboard sees it, once a second: what it is (runtime, uptime,
// memory), what it holds now (connections, subscriptions by channel template, presence by
// template, history, its relay), and what it counted since its last sample.
import type { Hub } from "../hub/hub.ts";
import type { TallyCounts } from "./tally.ts";

/** At most this many channel templates (and presence templates) in a sample, the busiest. */
export const MAX_SAMPLE_TEMPLATES = 20;

/** At most this many channels are looked at per sample (the rest are counted, not named). */
export const MAX_SAMPLED_CHANNELS = 100_000;

/** A template's subscriptions here: `[template, subscribers, channels]`. */
export type TemplateCount = [template: string, subscribers: number, channels: number];

/** The relay of an instance as the dashboard shows it. */
export interface RelaySample {
  status: "ok" | "degraded" | "down";
  reason?: string | undefined;
  published: number;
  received: number;
  lost: number;
  disconnects: number;
  pendingBytes: number;
}

/** One instance, once. */
export interface InstanceSample {
  id: string;
  runtime: string;
  startedAt: number;
  at: number;
  memory: { rss: number; heapUsed: number } | null;
  connections: number;
  subscriptions: number;
  channels: number;
  templates: TemplateCount[];
  presence: [template: string, members: number][];
  history: { streams: number; bytes: number } | "shared" | null;
  relay: RelaySample | null;
  counts: TallyCounts;
}

/** What a sample reads of the app it describes. */
export interface SampledApp {
  readonly hub: Hub;
  /** The template of a concrete channel name, or `undefined` when none matches. */
  templateOf(channel: string): string | undefined;
}

/** Samples `app` as instance `id`, with the counts its tally took. */
export function sampleInstance(
  app: SampledApp,
  id: string,
  startedAt: number,
  counts: TallyCounts,
  now: number = Date.now(),
): InstanceSample {
  const { hub } = app;
  const templates = new Map<string, { subscribers: number; channels: number }>();
  let subscriptions = 0;
  let looked = 0;
  for (const [channel, size] of hub.index.sizes()) {
    subscriptions += size;
    if (looked++ >= MAX_SAMPLED_CHANNELS) continue;
    const template = app.templateOf(channel) ?? UNKNOWN_TEMPLATE;
    const entry = templates.get(template);
    if (entry) {
      entry.subscribers += size;
      entry.channels++;
    } else templates.set(template, { subscribers: size, channels: 1 });
  }
  const presence = new Map<string, number>();
  const registry = hub.presenceIfMade?.registry;
  if (registry) {
    let seen = 0;
    for (const [channel, members] of registry.sizes()) {
      if (seen++ >= MAX_SAMPLED_CHANNELS) break;
      const template = app.templateOf(channel) ?? UNKNOWN_TEMPLATE;
      presence.set(template, (presence.get(template) ?? 0) + members);
    }
  }
  const relay = hub.relay;
  const stats = relay?.stats;
  const health = relay?.health;
  return {
    id,
    runtime: runtimeName(),
    startedAt,
    at: now,
    memory: memoryUsage(),
    connections: hub.connections.size,
    subscriptions,
    channels: hub.index.size(),
    templates: [...templates]
      .map(
        ([template, { subscribers, channels }]): TemplateCount => [template, subscribers, channels],
      )
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, MAX_SAMPLE_TEMPLATES),
    presence: [...presence]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, MAX_SAMPLE_TEMPLATES),
    history: hub.history?.usage ?? null,
    relay:
      relay === undefined
        ? null
        : {
            status: health?.status ?? "ok",
            reason: health?.reason,
            published: stats?.published ?? 0,
            received: stats?.received ?? 0,
            lost: stats?.lost ?? 0,
            disconnects: stats?.disconnects ?? 0,
            pendingBytes: stats?.pendingBytes ?? 0,
          },
    counts,
  };
}

/** The template of channels no declaration matches (a subscription kept across a deploy). */
export const UNKNOWN_TEMPLATE = "(unknown)";

/** The runtime this instance runs on, with its version. */
export function runtimeName(): string {
  const runtime = globalThis as {
    Bun?: { version?: string };
    Deno?: { version?: { deno?: string } };
    process?: { versions?: { node?: string } };
    navigator?: { userAgent?: string };
  };
  if (runtime.Bun) return `Bun ${runtime.Bun.version ?? ""}`.trim();
  if (runtime.Deno) return `Deno ${runtime.Deno.version?.deno ?? ""}`.trim();
  if (runtime.navigator?.userAgent === "Cloudflare-Workers") return "Cloudflare Workers";
  const node = runtime.process?.versions?.node;
  if (node) return `Node ${node}`;
  return runtime.navigator?.userAgent ?? "unknown";
}

/** The process's memory where the runtime tells it (Node, Bun, Deno), else `null`. */
function memoryUsage(): { rss: number; heapUsed: number } | null {
  const runtime = globalThis as {
    process?: { memoryUsage?: () => { rss: number; heapUsed: number } };
  };
  try {
    const usage = runtime.process?.memoryUsage?.();
    return usage ? { rss: usage.rss, heapUsed: usage.heapUsed } : null;
  } catch {
    return null;
  }
}
