// What the dashboard costs the server, on Node: actions (one client, 16 in flight) and
// fan-out (subscribers of one channel, broadcasts 20 at a time), in three ways: without
// `admin`, with `admin` and nobody watching, and with one dashboard page watching (its
// socket subscribed to the views, which it then gets every second). The server is
// bench/servers/node-admin.ts (the bench's app, socketapi-app.ts), the clients `ws` in this process; CPU
// is the server process's user and system time from /proc, in 10 ms ticks. The three ways
// are run in turn (each repetition starting with another), each in a new server process.
//
//   node --import tsx bench/admin.ts              # 3 repetitions, writes bench/ADMIN.md
//   node --import tsx bench/admin.ts --quick      # 1 short repetition
//   npm run bench -- --admin-only                 # the same as the first, from bench/run.ts
import { writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startServer } from "../tests/helpers/server-process.ts";
import { openClient, type WsClient } from "../tests/helpers/ws-client.ts";
import { broadcastInBatches, countDeliveries, keepInFlight } from "./closed-loop.ts";
import { putSection } from "./results-sections.ts";
import { median, spread, usageOf } from "./stats.ts";

const root = resolve(import.meta.dirname, "..");
const TOKEN = "bench-dashboard-token-0123";

const WAYS = [
  { name: "no admin", admin: false, watched: false },
  { name: "admin, nobody watching", admin: true, watched: false },
  { name: "admin, one page watching", admin: true, watched: true },
] as const;

interface Sizes {
  repetitions: number;
  requests: number;
  subscribers: number;
  broadcasts: number;
}
const FULL: Sizes = { repetitions: 3, requests: 60_000, subscribers: 500, broadcasts: 1000 };
const QUICK: Sizes = { repetitions: 1, requests: 10_000, subscribers: 200, broadcasts: 200 };

interface Measured {
  perSecond: number;
  cpuUs: number;
}

const cpuMsOf = (pid: number): number => usageOf(pid)?.cpuMs ?? Number.NaN;

/** `requests` add_numbers answered, 16 in flight. */
async function actions(pid: number, url: string, requests: number): Promise<Measured> {
  const client = await openClient(url);
  const frame = { type: "action", channel: "add_numbers", data: { a: 1, b: 2 } };
  await client.request(frame);
  const cpu = cpuMsOf(pid);
  const started = performance.now();
  await keepInFlight(client, frame, requests);
  const seconds = (performance.now() - started) / 1000;
  client.ws.terminate();
  return { perSecond: requests / seconds, cpuUs: ((cpuMsOf(pid) - cpu) * 1000) / requests };
}

/** `broadcasts` on `fanout` to `subscribers`, 20 at a time. */
async function fanOut(
  pid: number,
  url: string,
  subscribers: number,
  broadcasts: number,
): Promise<Measured> {
  const clients: WsClient[] = [];
  for (let i = 0; i < subscribers; i++) {
    const client = await openClient(url);
    await client.request({ type: "subscribe", channel: "fanout" });
    clients.push(client);
  }
  const sender = await openClient(url);
  const counted = countDeliveries(clients);
  const frame = { type: "action", channel: "broadcast", data: { count: 1 } };
  await sender.request(frame);
  await counted.until(subscribers);
  const cpu = cpuMsOf(pid);
  const start = counted.received;
  const started = performance.now();
  await broadcastInBatches(sender, frame, broadcasts, subscribers, counted);
  const seconds = (performance.now() - started) / 1000;
  const deliveries = counted.received - start;
  for (const client of [...clients, sender]) client.ws.terminate();
  return { perSecond: deliveries / seconds, cpuUs: ((cpuMsOf(pid) - cpu) * 1000) / deliveries };
}

type Rows = Map<string, { actions: Measured[]; fanout: Measured[] }>;

async function repetition(sizes: Sizes, rows: Rows, turn: number): Promise<void> {
  // Each repetition starts with another way, so that none is always first.
  const ways = WAYS.map((_, i) => WAYS[(i + turn) % WAYS.length] as (typeof WAYS)[number]);
  for (const way of ways) {
    const server = await startServer(
      [process.execPath, "--import", "tsx", "bench/servers/node-admin.ts"],
      {
        env: way.admin ? { ADMIN_TOKEN: TOKEN } : {},
      },
    );
    const pid = server.child.pid as number;
    let page: WsClient | undefined;
    try {
      if (way.watched) {
        page = await openClient(server.url.replace(/\/$/, "/admin"), {
          cookie: `socketapi_admin=${TOKEN}`,
        });
        await page.request({ type: "subscribe", channel: "stats", id: 1 });
      }
      const row = rows.get(way.name) ?? { actions: [], fanout: [] };
      row.actions.push(await actions(pid, server.url, sizes.requests));
      row.fanout.push(await fanOut(pid, server.url, sizes.subscribers, sizes.broadcasts));
      rows.set(way.name, row);
      if (page) {
        // It was sent a view every second all along.
        const views = page.frames.filter((text) => text.includes('"channel":"stats"')).length;
        if (views < 2) throw new Error(`the page got ${views} views`);
      }
    } finally {
      page?.ws.terminate();
      await server.stop();
    }
  }
}

function table(rows: Rows, sizes: Sizes): string {
  const base = rows.get(WAYS[0].name);
  const ratio = (values: Measured[], against: Measured[] | undefined, key: keyof Measured) =>
    against
      ? `${(median(values.map((m) => m[key])) / median(against.map((m) => m[key]))).toFixed(2)}`
      : "";
  const lines = [
    "| way | actions / s | µs CPU per action | × no admin | deliveries / s | µs CPU per delivery | × no admin |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const way of WAYS) {
    const row = rows.get(way.name);
    if (!row) continue;
    lines.push(
      `| ${way.name} | ${spread(row.actions.map((m) => m.perSecond))} | ${spread(
        row.actions.map((m) => m.cpuUs),
        "",
        1,
      )} | ${ratio(row.actions, base?.actions, "cpuUs")} | ${spread(row.fanout.map((m) => m.perSecond))} | ${spread(
        row.fanout.map((m) => m.cpuUs),
        "",
        2,
      )} | ${ratio(row.fanout, base?.fanout, "cpuUs")} |`,
    );
  }
  lines.push(
    "",
    `Actions: ${sizes.requests.toLocaleString("en-US")} add_numbers, 16 in flight, one client. Fan-out: ${sizes.subscribers} subscribers of fanout, ${sizes.broadcasts.toLocaleString("en-US")} broadcasts, 20 at a time. "× no admin" is the CPU per action or delivery against the server without the dashboard. Medians of ${sizes.repetitions} (min–max), each way in a new server process.`,
  );
  return lines.join("\n");
}

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    results: { type: "string" },
  },
});
const sizes = values.quick ? QUICK : FULL;
const rows: Rows = new Map();
for (let i = 0; i < sizes.repetitions; i++) await repetition(sizes, rows, i);
const body = table(rows, sizes);
const page = `# What the dashboard costs

Generated by \`npm run bench -- --admin-only\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores (${cpus()[0]?.model ?? "unknown"}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}. CPU is the server's.

${body}
`;
console.log(page);
if (values.results) await writeFile(values.results, page);
else {
  await writeFile(join(root, "bench", "ADMIN.md"), page);
  await putSection("admin", `## What the dashboard costs (bench/ADMIN.md)\n\n${body}`);
}
