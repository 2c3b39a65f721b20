/**
 * The app the compression suite serves on every runtime: `compression` on, a 128 KiB frame
 * limit (so 512 KiB where the runtime refuses frames before reading them), MessagePack for
 * clients that offer it, an action that
 * answers with as many characters as asked, and a channel to broadcast on. bench/wire.ts
 * serves it too.
 */
import * as v from "valibot";
import { SocketAPI } from "../../src/index.ts";
import { msgpack } from "../../src/msgpack.ts";

/** `count` characters of a text that deflates well (JSON-like, repeated). */
function textOf(count: number): string {
  return '{"user":"ada","text":"hello"}'.repeat(Math.ceil(count / 29)).slice(0, count);
}

const WORDS = ["ada", "lovelace", "engine", "note", "bernoulli", "loom", "card", "table", "sum"];

/**
 * About `count` characters of JSON like an app's (rows of ids, names, words and times,
 * from a fixed pseudo-random sequence): it deflates about as well as real data.
 */
function rowsOf(count: number): unknown[] {
  const rows: unknown[] = [];
  let seed = 7;
  let length = 2;
  const next = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed;
  };
  while (length < count) {
    const row = {
      id: next() % 1_000_000,
      user: WORDS[next() % WORDS.length],
      text: Array.from({ length: 1 + (next() % 6) }, () => WORDS[next() % WORDS.length]).join(" "),
      at: 1_765_000_000_000 + (next() % 86_400_000),
    };
    length += JSON.stringify(row).length + 1;
    rows.push(row);
  }
  return rows;
}

const count = v.object({
  count: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(65_536)),
  /** Rows of JSON (bench/wire.ts) instead of a repeated text. */
  rows: v.optional(v.boolean(), false),
  /** `count` bytes (pseudo-random, so incompressible) instead of text (bench/wire.ts). */
  bytes: v.optional(v.boolean(), false),
});

/** `count` pseudo-random bytes. */
function bytesOf(count: number): Uint8Array {
  const bytes = new Uint8Array(count);
  let seed = 11;
  for (let i = 0; i < count; i++) {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    bytes[i] = seed >> 16;
  }
  return bytes;
}

/** Payloads made already, by kind and size: the bench measures sending them, not making them. */
const made = new Map<string, unknown>();

/** What the `text` and `broadcast` actions send for their input. */
function payloadOf(input: { count: number; rows: boolean; bytes: boolean }): unknown {
  const key = `${input.bytes ? "bytes" : input.rows ? "rows" : "text"}:${input.count}`;
  let payload = made.get(key);
  if (payload === undefined) {
    payload = input.bytes
      ? bytesOf(input.count)
      : input.rows
        ? rowsOf(input.count)
        : textOf(input.count);
    // A handful of sizes at most (the suite's and the bench's), each kept once.
    if (made.size < 64) made.set(key, payload);
  }
  return payload;
}

/** `COMPRESSION=off` serves it without compression (bench/wire.ts compares the two). */
const off = (globalThis as { process?: NodeJS.Process }).process?.env.COMPRESSION === "off";

const app = new SocketAPI({
  // 64 KiB of bytes fit in a frame of MessagePack, not of JSON (base64): bench/wire.ts.
  maxMessageBytes: 128 * 1024,
  codecs: [msgpack],
  compression: off ? false : { threshold: 1024 },
  rateLimit: false,
})
  .action("text", { input: count }, (input) => payloadOf(input))
  // How many characters it was sent (a frame past the limit never reaches it).
  .action("echo", { input: v.object({ text: v.string() }) }, ({ text }) => text.length)
  .channel("feed", { params: v.object({ text: v.optional(v.unknown(), "") }) }, ({ text }) => text)
  // The process's resident memory, where the runtime can tell (Node, Bun, Deno).
  .action("rss", () => (globalThis as { process?: NodeJS.Process }).process?.memoryUsage().rss)
  .action("broadcast", { input: count }, async (input, ctx) => {
    await ctx.channels.feed({ text: payloadOf(input) });
  });

export default app;
