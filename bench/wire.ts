// What crosses the wire, and what it costs the server: bytes and server CPU per delivery
// for actions (one client, 16 requests in flight) and fan-out (subscribers of one channel,
// broadcasts 20 at a time), with small (about 150 B) and 16 KB frames of JSON rows (ids, names, words, times), on Node and
// Bun, with permessage-deflate off and on (`compression`, threshold 1 KiB, window 10
// bits); and the memory a connection holds once it sent a compressed frame (the inflate
// stream). The server is tests/servers/compression-*.ts, the clients `ws` in this process.
// CPU is the server process's user and system time from /proc, in 10 ms ticks.
//
//   node --import tsx bench/wire.ts              # 3 repetitions, writes bench/WIRE.md
//   node --import tsx bench/wire.ts --quick      # 1 short repetition
//   npm run bench -- --wire-only                 # the same as the first, from bench/run.ts
import { writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startServer } from "../tests/helpers/server-process.ts";
import { openClient, type WsClient } from "../tests/helpers/ws-client.ts";
import { putSection } from "./results-sections.ts";
import { spread, usageOf } from "./stats.ts";

const root = resolve(import.meta.dirname, "..");
const bin = (name: string) => join(root, "node_modules", ".bin", name);

const RUNTIMES = [
  {
    name: "Node",
    command: [process.execPath, "--import", "tsx", "tests/servers/compression-node.ts"],
  },
  { name: "Bun", command: [bin("bun"), "tests/servers/compression-bun.ts"] },
];

/** About how many characters of JSON rows the `text` action answers: 150 B, and 16 KB. */
const FRAMES = [
  { name: "small", count: 100 },
  { name: "16 KB", count: 16_300 },
];

interface Sizes {
  repetitions: number;
  requests: number;
  subscribers: number;
  broadcasts: number;
  idle: number;
}

const FULL: Sizes = {
  repetitions: 3,
  requests: 20_000,
  subscribers: 200,
  broadcasts: 1000,
  idle: 1000,
};
const QUICK: Sizes = {
  repetitions: 1,
  requests: 2000,
  subscribers: 50,
  broadcasts: 100,
  idle: 200,
};

/** One measurement: per delivery, bytes the clients read and server CPU in µs. */
interface Measured {
  bytes: number;
  cpuUs: number;
  frameBytes: number;
}

function cpuMsOf(pid: number): number {
  return usageOf(pid)?.cpuMs ?? Number.NaN;
}

const open = (url: string) => openClient(url, {}, undefined, { perMessageDeflate: true });

/** `requests` actions answered with `count` characters, 16 in flight. */
async function actions(pid: number, url: string, count: number, requests: number) {
  const client = await open(url);
  const frame = { type: "action", channel: "text", data: { count, rows: true } };
  const answer = await client.request(frame);
  const frameBytes = JSON.stringify(answer).length;
  const read = client.wire.read;
  const cpu = cpuMsOf(pid);
  let sent = 0;
  let answered = 0;
  await new Promise<void>((done) => {
    client.ws.on("message", () => {
      answered += 1;
      if (sent < requests) {
        sent += 1;
        client.send(frame);
      } else if (answered === requests) done();
    });
    for (; sent < Math.min(16, requests); sent++) client.send(frame);
  });
  const measured: Measured = {
    bytes: (client.wire.read - read) / requests,
    cpuUs: ((cpuMsOf(pid) - cpu) * 1000) / requests,
    frameBytes,
  };
  client.ws.terminate();
  return measured;
}

/** `broadcasts` of `count` characters to `subscribers`, 20 at a time. */
async function fanOut(
  pid: number,
  url: string,
  count: number,
  subscribers: number,
  broadcasts: number,
) {
  const clients: WsClient[] = [];
  for (let i = 0; i < subscribers; i++) {
    const client = await open(url);
    await client.request({ type: "subscribe", channel: "feed" });
    clients.push(client);
  }
  const sender = await open(url);
  let received = 0;
  let wake: (() => void) | undefined;
  for (const client of clients) {
    client.ws.on("message", () => {
      received += 1;
      wake?.();
    });
  }
  const frame = { type: "action", channel: "broadcast", data: { count, rows: true } };
  const until = (total: number) =>
    new Promise<void>((done) => {
      wake = () => received >= total && done();
      wake();
    });
  await sender.request(frame);
  await until(subscribers);
  const frameBytes = (clients[0]?.frames.at(-1) ?? "").length;
  const reads = clients.reduce((sum, client) => sum + client.wire.read, 0);
  const cpu = cpuMsOf(pid);
  const start = received;
  for (let sent = 0; sent < broadcasts; sent += 20) {
    for (let i = 0; i < 20; i++) sender.send(frame);
    await until(start + (sent + 20) * subscribers);
  }
  const deliveries = received - start;
  const measured: Measured = {
    bytes: (clients.reduce((sum, client) => sum + client.wire.read, 0) - reads) / deliveries,
    cpuUs: ((cpuMsOf(pid) - cpu) * 1000) / deliveries,
    frameBytes,
  };
  for (const client of [...clients, sender]) client.ws.terminate();
  return measured;
}

/** Server memory per connection that sent one 2 KB compressible frame (compressed where on). */
async function memoryPerConnection(pid: number, url: string, connections: number) {
  const clients: WsClient[] = [];
  const settle = () => new Promise((done) => setTimeout(done, 1000));
  await settle();
  const before = usageOf(pid)?.rss ?? 0;
  for (let i = 0; i < connections; i++) {
    const client = await open(url);
    await client.request({ type: "action", channel: "echo", data: { text: "hello ".repeat(340) } });
    clients.push(client);
  }
  await settle();
  const after = usageOf(pid)?.rss ?? 0;
  for (const client of clients) client.ws.terminate();
  return (after - before) / connections;
}

type Row = Map<string, number[]>;

async function repetition(sizes: Sizes, rows: Row) {
  const add = (key: string, value: number) => {
    const values = rows.get(key) ?? [];
    values.push(value);
    rows.set(key, values);
  };
  for (const runtime of RUNTIMES) {
    for (const compression of ["off", "on"]) {
      const server = await startServer(runtime.command, { env: { COMPRESSION: compression } });
      const pid = server.child.pid as number;
      try {
        for (const { name, count } of FRAMES) {
          const a = await actions(pid, server.url, count, sizes.requests);
          const key = `${runtime.name}|${compression}|action|${name}`;
          add(`${key}|bytes`, a.bytes);
          add(`${key}|cpu`, a.cpuUs);
          add(`${key}|frame`, a.frameBytes);
          const f = await fanOut(pid, server.url, count, sizes.subscribers, sizes.broadcasts);
          const fKey = `${runtime.name}|${compression}|fan-out|${name}`;
          add(`${fKey}|bytes`, f.bytes);
          add(`${fKey}|cpu`, f.cpuUs);
          add(`${fKey}|frame`, f.frameBytes);
          console.error(`${runtime.name} compression ${compression} ${name}:`, a, f);
        }
        add(
          `${runtime.name}|${compression}|memory`,
          await memoryPerConnection(pid, server.url, sizes.idle),
        );
      } finally {
        await server.stop();
      }
    }
  }
}

function table(rows: Row, sizes: Sizes): string {
  const get = (key: string) => rows.get(key) ?? [];
  const lines = [
    "| runtime | scenario | frame | bytes per delivery, off → on | server CPU per delivery, off → on |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const runtime of RUNTIMES) {
    for (const scenario of ["action", "fan-out"]) {
      for (const { name } of FRAMES) {
        const key = (c: string, what: string) => `${runtime.name}|${c}|${scenario}|${name}|${what}`;
        const frame = spread(get(key("off", "frame")), " B");
        lines.push(
          `| ${runtime.name} | ${scenario} | ${frame} | ${spread(get(key("off", "bytes")), " B")} → ${spread(get(key("on", "bytes")), " B")} | ${spread(get(key("off", "cpu")), " µs", 1)} → ${spread(get(key("on", "cpu")), " µs", 1)} |`,
        );
      }
    }
  }
  lines.push("", "| runtime | memory per connection after one compressed frame, off → on |");
  lines.push("| --- | --- |");
  for (const runtime of RUNTIMES) {
    const kib = (c: string) => get(`${runtime.name}|${c}|memory`).map((b) => b / 1024);
    lines.push(
      `| ${runtime.name} | ${spread(kib("off"), " KiB", 1)} → ${spread(kib("on"), " KiB", 1)} |`,
    );
  }
  lines.push(
    "",
    `Actions: ${sizes.requests.toLocaleString("en-US")} requests, 16 in flight. Fan-out: ${sizes.subscribers} subscribers, ${sizes.broadcasts.toLocaleString("en-US")} broadcasts, 20 at a time. Memory: ${sizes.idle.toLocaleString("en-US")} connections, each after one 2 KB action frame (compressed by the client where negotiated). Medians of ${sizes.repetitions} (min–max).`,
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
const rows: Row = new Map();
for (let i = 0; i < sizes.repetitions; i++) await repetition(sizes, rows);
const body = table(rows, sizes);
const page = `# On the wire: compression

Generated by \`npm run bench -- --wire-only\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores (${cpus()[0]?.model ?? "unknown"}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}. Bytes per delivery are what the clients read off their TCP sockets (frames and headers); CPU is the server's.

${body}
`;
console.log(page);
if (values.results) await writeFile(values.results, page);
else {
  await writeFile(join(root, "bench", "WIRE.md"), page);
  await putSection("wire", `## On the wire: compression (bench/WIRE.md)\n\n${body}`);
}
