// What crosses the wire, and what it costs the server: bytes and server CPU per delivery
// for actions (one client, 16 requests in flight) and fan-out (subscribers of one channel,
// broadcasts 20 at a time), with small (about 150 B) and 16 KB frames of JSON rows (ids,
// names, words, times) and frames of 64 KiB of bytes, on Node and Bun, in three ways: JSON,
// JSON with permessage-deflate (`compression`, threshold 1 KiB, window 10 bits), and
// MessagePack (`socketapi.msgpack`); the memory a connection holds once it sent a
// compressed frame (the inflate stream); and the two MessagePack libraries side by side
// (msgpackr, which socketapi/msgpack uses, and @msgpack/msgpack) on the same frames. The
// server is tests/servers/compression-*.ts (MessagePack on in every row, so bytes are
// {"$bytes": base64} in JSON), the clients `ws` in this process. CPU is the server
// process's user and system time from /proc, in 10 ms ticks.
//
//   node --import tsx bench/wire.ts              # 3 repetitions, writes bench/WIRE.md
//   node --import tsx bench/wire.ts --quick      # 1 short repetition
//   npm run bench -- --wire-only                 # the same as the first, from bench/run.ts
import { writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Decoder, Encoder } from "@msgpack/msgpack";
import { Packr } from "msgpackr";
import { msgpack } from "../src/msgpack.ts";
import type { Codec } from "../src/protocol/codec.ts";
import { startServer } from "../tests/helpers/server-process.ts";
import { openClient, type WsClient } from "../tests/helpers/ws-client.ts";
import { broadcastInBatches, countDeliveries, keepInFlight } from "./closed-loop.ts";
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

/** What the `text` action answers: about 150 B and 16 KB of JSON rows, and 64 KiB of bytes. */
const FRAMES = [
  { name: "small", count: 100, bytes: false },
  { name: "16 KB", count: 16_300, bytes: false },
  { name: "64 KiB of bytes", count: 65_536, bytes: true },
];

/** The three ways a frame crosses the wire: how the server runs, what the client offers. */
const MODES = [
  { name: "JSON", compression: "off", codec: undefined },
  { name: "JSON + deflate", compression: "on", codec: undefined },
  { name: "MessagePack", compression: "off", codec: msgpack },
] as const;

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

let codec: Codec | undefined;
const open = (url: string) => openClient(url, {}, undefined, { perMessageDeflate: true, codec });

/** What the client read for its last frame, in bytes (as it came: text or binary). */
function lastFrameBytes(client: WsClient, received: { bytes: number }) {
  client.ws.on("message", (data: Buffer) => {
    received.bytes = data.length;
  });
}

/** The `text` action's input for a frame. */
function inputOf(count: number, bytes: boolean) {
  return { count, rows: !bytes, bytes };
}

/** `requests` actions answered with `count` characters (or bytes), 16 in flight. */
async function actions(pid: number, url: string, count: number, bytes: boolean, requests: number) {
  const client = await open(url);
  const last = { bytes: 0 };
  lastFrameBytes(client, last);
  const frame = { type: "action", channel: "text", data: inputOf(count, bytes) };
  await client.request(frame);
  const frameBytes = last.bytes;
  const read = client.wire.read;
  const cpu = cpuMsOf(pid);
  await keepInFlight(client, frame, requests);
  const measured: Measured = {
    bytes: (client.wire.read - read) / requests,
    cpuUs: ((cpuMsOf(pid) - cpu) * 1000) / requests,
    frameBytes,
  };
  client.ws.terminate();
  return measured;
}

/** `broadcasts` of `count` characters (or bytes) to `subscribers`, 20 at a time. */
async function fanOut(
  pid: number,
  url: string,
  count: number,
  bytes: boolean,
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
  const last = { bytes: 0 };
  if (clients[0]) lastFrameBytes(clients[0], last);
  const counted = countDeliveries(clients);
  const frame = { type: "action", channel: "broadcast", data: inputOf(count, bytes) };
  await sender.request(frame);
  await counted.until(subscribers);
  const frameBytes = last.bytes;
  const reads = clients.reduce((sum, client) => sum + client.wire.read, 0);
  const cpu = cpuMsOf(pid);
  const start = counted.received;
  await broadcastInBatches(sender, frame, broadcasts, subscribers, counted);
  const deliveries = counted.received - start;
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
    for (const mode of MODES) {
      const server = await startServer(runtime.command, {
        env: { COMPRESSION: mode.compression },
      });
      codec = mode.codec;
      const pid = server.child.pid as number;
      try {
        for (const { name, count, bytes } of FRAMES) {
          // Frames of 64 KiB: a tenth as many (the same client reads them all).
          const a = await actions(
            pid,
            server.url,
            count,
            bytes,
            bytes ? sizes.requests / 10 : sizes.requests,
          );
          const key = `${runtime.name}|${mode.name}|action|${name}`;
          add(`${key}|bytes`, a.bytes);
          add(`${key}|cpu`, a.cpuUs);
          add(`${key}|frame`, a.frameBytes);
          const broadcasts = bytes ? Math.ceil(sizes.broadcasts / 20) : sizes.broadcasts;
          const f = await fanOut(pid, server.url, count, bytes, sizes.subscribers, broadcasts);
          const fKey = `${runtime.name}|${mode.name}|fan-out|${name}`;
          add(`${fKey}|bytes`, f.bytes);
          add(`${fKey}|cpu`, f.cpuUs);
          add(`${fKey}|frame`, f.frameBytes);
          console.error(`${runtime.name} ${mode.name} ${name}:`, a, f);
        }
        if (mode.codec === undefined) {
          add(
            `${runtime.name}|${mode.name}|memory`,
            await memoryPerConnection(pid, server.url, sizes.idle),
          );
        }
      } finally {
        await server.stop();
      }
    }
  }
  codec = undefined;
}

/** The frames of the library comparison: the same three as on the wire. */
function libraryFrames() {
  const rows = JSON.parse(
    JSON.stringify(
      Array.from({ length: 400 }, (_, i) => ({
        id: (i * 7919) % 1_000_000,
        user: "ada",
        text: "hello engine note",
        at: 1_765_000_000_000 + i,
      })),
    ),
  );
  return [
    {
      name: "small",
      frame: { type: "action", channel: "add_numbers", status: "completed", data: 8, id: 12 },
      times: 200_000,
    },
    { name: "16 KB", frame: { type: "data", channel: "feed", data: rows }, times: 5000 },
    {
      name: "64 KiB of bytes",
      frame: { type: "data", channel: "feed", data: new Uint8Array(65_536).fill(7) },
      times: 5000,
    },
  ];
}

/** Encode and decode µs per frame, and the size, for msgpackr and @msgpack/msgpack. */
function libraries(rows: Row, quick: boolean) {
  const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });
  const encoder = new Encoder();
  const decoder = new Decoder();
  const libs = [
    {
      name: "msgpackr",
      encode: (v: unknown) => packr.pack(v),
      decode: (b: Uint8Array) => packr.unpack(b),
    },
    {
      name: "@msgpack/msgpack",
      encode: (v: unknown) => encoder.encode(v),
      decode: (b: Uint8Array) => decoder.decode(b),
    },
  ];
  for (const { name, frame, times } of libraryFrames()) {
    const n = quick ? Math.ceil(times / 10) : times;
    for (const lib of libs) {
      let bytes = lib.encode(frame);
      // Warm up, then measure.
      for (let i = 0; i < n / 10; i++) lib.decode(lib.encode(frame));
      let start = performance.now();
      for (let i = 0; i < n; i++) bytes = lib.encode(frame);
      const encodeUs = ((performance.now() - start) * 1000) / n;
      start = performance.now();
      for (let i = 0; i < n; i++) lib.decode(bytes);
      const decodeUs = ((performance.now() - start) * 1000) / n;
      const key = `lib|${lib.name}|${name}`;
      for (const [what, value] of [
        ["encode", encodeUs],
        ["decode", decodeUs],
        ["size", bytes.length],
      ] as const) {
        const values = rows.get(`${key}|${what}`) ?? [];
        values.push(value);
        rows.set(`${key}|${what}`, values);
      }
    }
  }
}

function table(rows: Row, sizes: Sizes): string {
  const get = (key: string) => rows.get(key) ?? [];
  const lines = [
    "| runtime | scenario | frame (JSON) | bytes per delivery: JSON · deflate · MessagePack | server CPU per delivery: JSON · deflate · MessagePack |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const runtime of RUNTIMES) {
    for (const scenario of ["action", "fan-out"]) {
      for (const { name } of FRAMES) {
        const key = (mode: string, what: string) =>
          `${runtime.name}|${mode}|${scenario}|${name}|${what}`;
        const all = (what: string, unit: string, digits: number) =>
          MODES.map((mode) => spread(get(key(mode.name, what)), unit, digits)).join(" · ");
        lines.push(
          `| ${runtime.name} | ${scenario} | ${name}: ${spread(get(key("JSON", "frame")), " B")} | ${all("bytes", " B", 0)} | ${all("cpu", " µs", 1)} |`,
        );
      }
    }
  }
  lines.push("", "| runtime | memory per connection after one compressed frame, JSON → deflate |");
  lines.push("| --- | --- |");
  for (const runtime of RUNTIMES) {
    const kib = (mode: string) => get(`${runtime.name}|${mode}|memory`).map((b) => b / 1024);
    lines.push(
      `| ${runtime.name} | ${spread(kib("JSON"), " KiB", 1)} → ${spread(kib("JSON + deflate"), " KiB", 1)} |`,
    );
  }
  lines.push("", "| library | frame | size | encode | decode |", "| --- | --- | --- | --- | --- |");
  for (const lib of ["msgpackr", "@msgpack/msgpack"]) {
    for (const { name } of libraryFrames()) {
      const key = (what: string) => get(`lib|${lib}|${name}|${what}`);
      lines.push(
        `| ${lib} | ${name} | ${spread(key("size"), " B")} | ${spread(key("encode"), " µs", 2)} | ${spread(key("decode"), " µs", 2)} |`,
      );
    }
  }
  lines.push(
    "",
    `Actions: ${sizes.requests.toLocaleString("en-US")} requests, 16 in flight. Fan-out: ${sizes.subscribers} subscribers, ${sizes.broadcasts.toLocaleString("en-US")} broadcasts, 20 at a time (a tenth of the requests and a twentieth of the broadcasts for 64 KiB of bytes). The payloads are made once by the server, so that what is measured is sending them. Memory: ${sizes.idle.toLocaleString("en-US")} connections, each after one 2 KB action frame (compressed by the client where negotiated). Libraries: encode and decode in this process, ${libraryFrames()
      .map((f) => `${f.times.toLocaleString("en-US")} times for ${f.name}`)
      .join(", ")}. Medians of ${sizes.repetitions} (min–max).`,
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
for (let i = 0; i < sizes.repetitions; i++) {
  await repetition(sizes, rows);
  libraries(rows, values.quick ?? false);
}
const body = table(rows, sizes);
const page = `# On the wire: compression and MessagePack

Generated by \`npm run bench -- --wire-only\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores (${cpus()[0]?.model ?? "unknown"}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}. Bytes per delivery are what the clients read off their TCP sockets (frames and headers); CPU is the server's.

${body}
`;
console.log(page);
if (values.results) await writeFile(values.results, page);
else {
  await writeFile(join(root, "bench", "WIRE.md"), page);
  await putSection(
    "wire",
    `## On the wire: compression and MessagePack (bench/WIRE.md)\n\n${body}`,
  );
}
