// Property-based fuzzing over a real socket: generated frames of every shape, each must get
// exactly one well-formed answer, the connection must stay open, nothing internal may
// leak, and a bystander must see nothing.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Frame } from "./helpers/fake-client.ts";
import { type ServerProcess, startLoadServer } from "./helpers/server-process.ts";
import { openClient, type WsClient } from "./helpers/ws-client.ts";

const RUNS = 10_000;
const NAMES = [
  "add_numbers",
  "echo",
  "strict",
  "crash",
  "refuse",
  "chat",
  "rooms/1",
  "rooms/",
  "secret",
  "nothing",
  "journal",
];
const HOSTILE_KEYS = ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty"];

const hostileObject = fc.dictionary(
  fc.constantFrom(...HOSTILE_KEYS, "a", "b", "name"),
  fc.jsonValue(),
  {
    maxKeys: 4,
  },
);
const anyValue = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  hostileObject,
  fc.constantFrom(0, -0, 1e308, -1e308, Number.MAX_SAFE_INTEGER, 2 ** 53 + 1, 0.1 + 0.2),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.string({ maxLength: 20_000 }),
);
const frameObject = fc.record(
  {
    type: fc.oneof(
      fc.constantFrom("action", "subscribe", "unsubscribe", "ping", "", "data", "ACTION"),
      anyValue,
    ),
    channel: fc.oneof(
      fc.constantFrom(...NAMES),
      fc.string({ maxLength: 300 }),
      anyValue,
      // Lone surrogates, which no UTF-8 carries.
      fc.constantFrom("rooms/a\ud800", "\udc00chat", "journal\ud83d", "\ud800\udc00ok"),
    ),
    id: fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 140 }), anyValue),
    data: fc.oneof(
      fc.record({ a: fc.oneof(fc.integer(), anyValue), b: fc.oneof(fc.integer(), anyValue) }),
      fc.record({ name: fc.string(), tags: fc.array(fc.string(), { maxLength: 5 }) }),
      anyValue,
    ),
    // The additions of history and presence, with what a hostile client may put there.
    since: fc.oneof(
      fc.record({
        offset: fc.oneof(fc.integer(), anyValue),
        // Empty streams' positions among them, well formed or not.
        epoch: fc.oneof(
          fc.string(),
          anyValue,
          fc.constantFrom("e-r-0", "e-r-zzzzzzzzzzzz", "e-abcdef120-mx7co8ub", "e--", "e-r-"),
        ),
      }),
      anyValue,
    ),
    presence: fc.oneof(fc.boolean(), anyValue),
  },
  { requiredKeys: [] },
);
const deepNesting = fc
  .integer({ min: 1, max: 30_000 })
  .map(
    (depth) => `{"type":"action","channel":"echo","data":${"[".repeat(depth)}${"]".repeat(depth)}}`,
  );
const withHostileTopLevel = fc
  .tuple(frameObject, fc.constantFrom(...HOSTILE_KEYS))
  .map(([frame, key]) =>
    JSON.stringify(frame).replace(/^\{/, `{"${key}":{"type":"subscribe","polluted":true},`),
  );
const rawText = fc.oneof(
  fc.string({ maxLength: 500 }),
  fc.string({ unit: "binary", maxLength: 500 }),
  fc.json({ maxDepth: 5 }),
  fc.constantFrom(
    '{"type":"ping"}',
    "1e999",
    '{"type":"action","channel":"echo","id":1e999}',
    "",
    " ",
    "{}",
  ),
);
/** Frames of the right shape for a known name, with inputs right and wrong. */
const wellShaped = fc.record({
  type: fc.constantFrom("action", "subscribe", "unsubscribe"),
  channel: fc.constantFrom(...NAMES),
  id: fc.oneof(fc.integer(), fc.string({ maxLength: 128 })),
  data: fc.oneof(
    fc.record({ a: fc.integer(), b: fc.integer() }),
    fc.record({ a: anyValue, b: anyValue }),
    fc.record({
      name: fc.string(),
      tags: fc.array(fc.oneof(fc.string(), anyValue), { maxLength: 30 }),
    }),
    fc.record({ token: anyValue, message: anyValue }),
    anyValue,
  ),
});
/** Frames over the 64 KiB limit, but under the size at which the server closes instead. */
const oversized = fc
  .integer({ min: 64 * 1024, max: 200 * 1024 })
  .map((size) => `{"type":"action","channel":"echo","data":"${"x".repeat(size)}"}`);
/** What the fuzzer sends: text (JSON or not) or, now and then, a binary frame. */
const frame: fc.Arbitrary<{ text: string } | { binary: Uint8Array }> = fc.oneof(
  { weight: 4, arbitrary: frameObject.map((value) => ({ text: JSON.stringify(value) })) },
  { weight: 4, arbitrary: wellShaped.map((value) => ({ text: JSON.stringify(value) })) },
  { weight: 1, arbitrary: oversized.map((text) => ({ text })) },
  { weight: 2, arbitrary: rawText.map((text) => ({ text })) },
  { weight: 1, arbitrary: withHostileTopLevel.map((text) => ({ text })) },
  { weight: 1, arbitrary: deepNesting.map((text) => ({ text })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((binary) => ({ binary })) },
);

const ANSWER_TYPES = new Set(["action", "subscribed", "unsubscribed", "error", "pong"]);

/** Why an answer is not a well-formed frame of the protocol, or undefined when it is. */
function malformed(raw: string): string | undefined {
  let answer: Frame;
  try {
    answer = JSON.parse(raw);
  } catch {
    return "not JSON";
  }
  if (answer === null || typeof answer !== "object" || Array.isArray(answer))
    return "not an object";
  if (!ANSWER_TYPES.has(answer.type)) return `unexpected type ${answer.type}`;
  if (answer.type === "error") {
    if (typeof answer.code !== "string" || typeof answer.message !== "string")
      return "error without code or message";
    if (/SECRET|\.ts:\d+|\n\s+at /.test(raw)) return "internal detail leaked";
    if (answer.code === "INTERNAL_ERROR" && answer.message !== "Internal server error.")
      return "internal message";
  }
  if (answer.type === "action" && answer.status !== "completed")
    return "action answer without status";
  if ("id" in answer && typeof answer.id !== "string" && typeof answer.id !== "number")
    return "bad id echoed";
  return undefined;
}

describe("fuzzing a real Node server", () => {
  let server: ServerProcess;
  let client: WsClient;
  let bystander: WsClient;

  beforeAll(async () => {
    server = await startLoadServer();
    bystander = await openClient(server.url);
    await bystander.request({ type: "subscribe", channel: "secret" });
    client = await openClient(server.url);
  }, 30_000);

  afterAll(async () => {
    client?.ws.terminate();
    bystander?.ws.terminate();
    await server?.stop();
  });

  it(`answers ${RUNS} generated frames once each, well formed, and stays open`, {
    timeout: 180_000,
  }, async () => {
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(frame, async (generated) => {
        if ("binary" in generated) client.sendRaw(Buffer.from(generated.binary), true);
        else client.sendRaw(generated.text);
        const answer = await client.next(5000);
        const raw = client.frames[client.frames.length - 1] as string;
        const problem = malformed(raw);
        if (problem) throw new Error(`${problem}: ${raw.slice(0, 300)}`);
        const key = answer.code ?? answer.type;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        if (client.ws.readyState !== 1) throw new Error("the connection closed");
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
    // Nothing more than one answer per frame.
    await client.expectNone(200);
    console.log(
      `fuzzed ${RUNS} frames; answers by code: ${JSON.stringify(Object.fromEntries(seen))}`,
    );
    // The generators reach every kind of answer, not only the cheapest.
    for (const code of [
      "INVALID_JSON",
      "INVALID_MESSAGE",
      "UNKNOWN_TYPE",
      "NOT_FOUND",
      "INVALID_PARAMS",
      "pong",
    ]) {
      expect(seen.get(code), code).toBeGreaterThan(0);
    }
  });

  it("left the bystander with nothing and the server healthy", async () => {
    await bystander.expectNone(100);
    const stats = (await bystander.request({ type: "action", channel: "_stats" })).data;
    expect(stats.connections).toBe(2);
    expect(client.ws.readyState).toBe(1);
  });
});
