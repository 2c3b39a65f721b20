// One pipeline for actions, subscribes and broadcasts: validate → dependencies → guard →
// handler → output. Whether each step is synchronous or returns a promise changes nothing
// a client sees: the same scenarios give the same frames in the same order, in every one
// of the 32 combinations.
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { depends, ForbiddenError, SocketAPI, SocketAPIError } from "../src/index.ts";
import { createTestClient } from "../src/testing.ts";

type Mode = "sync" | "async";
interface Modes {
  schema: Mode;
  dependency: Mode;
  guard: Mode;
  handler: Mode;
  output: Mode;
}

/** `value`, now or a microtask later. */
const as = <T>(mode: Mode, value: T): T | Promise<T> =>
  mode === "sync" ? value : Promise.resolve().then(() => value);

/**
 * A schema built sync or async as `mode` says, checking the same things with the same
 * messages. Loosely typed: TypeScript cannot type a union of both forms inside an object.
 */
// biome-ignore lint/suspicious/noExplicitAny: see above.
type Loose = v.GenericSchema<any, any>;
const objectOf = (mode: Mode, entries: Record<string, Loose>): Loose =>
  (mode === "sync" ? v.object(entries) : v.objectAsync(entries)) as unknown as Loose;
const piped = (mode: Mode, schema: Loose, ...actions: v.GenericPipeItem[]): Loose =>
  (mode === "sync"
    ? v.pipe(schema, ...(actions as []))
    : v.pipeAsync(
        schema,
        ...(actions as []),
        v.checkAsync(async () => true),
      )) as unknown as Loose;

function appFor(modes: Modes) {
  const user = depends(
    objectOf(modes.schema, { token: piped(modes.schema, v.string()) }),
    ({ token }: { token: string }) => {
      if (token === "bad") {
        if (modes.dependency === "sync") throw new ForbiddenError("Bad token.");
        return Promise.reject(new ForbiddenError("Bad token."));
      }
      return as(modes.dependency, token.toUpperCase());
    },
  );
  const input = objectOf(modes.schema, {
    n: piped(modes.schema, v.number(), v.minValue(0)),
    user: user as unknown as Loose,
  });
  const result = objectOf(modes.output, {
    n: v.number(),
    user: piped(modes.output, v.string()),
  });
  const params = objectOf(modes.schema, { n: v.optional(v.number(), 0) });
  const data = objectOf(modes.output, { n: piped(modes.output, v.number()) });
  // The errors these scenarios provoke are expected: heard, not printed.
  return (
    new SocketAPI({ onError: () => {} })
      .channel(
        "events",
        {
          params,
          data,
          initialData: true,
          guard: (_params, ctx) => as(modes.guard, ctx.connection.state.allowed !== false),
        },
        ({ n }: { n: number }) => as(modes.handler, { n }),
      )
      .action(
        "run",
        { input, output: result, guard: ({ n }: { n: number }) => as(modes.guard, n !== 13) },
        ({ n, user }: { n: number; user: string }) => {
          const fail = (error: Error) => {
            if (modes.handler === "sync") throw error;
            return Promise.reject(error);
          };
          if (n === 7) return fail(new SocketAPIError("Seven.", { code: "SEVEN" }));
          if (n === 8) return fail(new Error("internal detail"));
          return as(
            modes.handler,
            n === 9 ? { n: "nine" as unknown as number, user } : { n, user },
          );
        },
      )
      // Broadcasts through the channel's pipeline, before its own answer.
      .action("announce", { input: v.object({ n: v.number() }) }, async ({ n }, ctx) =>
        ctx.channels.events({ n }),
      )
  );
}

/** Every frame a client sees for one script of frames, in order. */
async function transcript(modes: Modes): Promise<unknown[]> {
  const app = appFor(modes);
  const client = await createTestClient(app);
  const script: unknown[] = [
    { type: "subscribe", channel: "events", id: "s" },
    { type: "action", channel: "run", data: { n: 1, user: { token: "ada" } }, id: 1 },
    { type: "action", channel: "announce", data: { n: 5 }, id: "a" },
    { type: "action", channel: "run", data: { n: -1, user: { token: "ada" } }, id: 2 },
    { type: "action", channel: "run", data: { n: 13, user: { token: "ada" } }, id: 3 },
    { type: "action", channel: "run", data: { n: 7, user: { token: "ada" } }, id: 4 },
    { type: "action", channel: "run", data: { n: 8, user: { token: "ada" } }, id: 5 },
    { type: "action", channel: "run", data: { n: 9, user: { token: "ada" } }, id: 6 },
    { type: "action", channel: "run", data: { n: 2, user: { token: "bad" } }, id: 7 },
    { type: "action", channel: "run", data: { n: 3 }, id: 8 },
  ];
  for (const frame of script) client.send(frame);
  const frames: unknown[] = [];
  // subscribed + initial data, completed (1), a broadcast then its action's completed (a),
  // four errors (2-5), an output error (6), two errors (7, 8).
  for (let i = 0; i < 12; i++) frames.push(await client.next(2000));
  await client.expectNone(20);
  // A broadcast started by the server, through the same pipeline, refused alike.
  const refused = await app.channels.events({ n: "x" as unknown as number }).catch((e) => e);
  frames.push({ name: refused.name, issues: refused.issues });
  return frames;
}

const modes: Mode[] = ["sync", "async"];
const combinations: Modes[] = modes.flatMap((schema) =>
  modes.flatMap((dependency) =>
    modes.flatMap((guard) =>
      modes.flatMap((handler) =>
        modes.map((output) => ({ schema, dependency, guard, handler, output })),
      ),
    ),
  ),
);

describe("one pipeline, synchronous or not", () => {
  it("gives the frames a client expects, all steps synchronous", async () => {
    const frames = await transcript(combinations[0] as Modes);
    expect(frames.slice(0, 5)).toEqual([
      { type: "subscribed", channel: "events", id: "s" },
      { type: "data", channel: "events", data: { n: 0 } },
      { type: "action", channel: "run", status: "completed", data: { n: 1, user: "ADA" }, id: 1 },
      { type: "data", channel: "events", data: { n: 5 } },
      { type: "action", channel: "announce", status: "completed", data: 1, id: "a" },
    ]);
    expect(frames.slice(5).map((frame) => (frame as { code?: string }).code)).toEqual([
      "INVALID_PARAMS",
      "FORBIDDEN",
      "SEVEN",
      "INTERNAL_ERROR",
      "INTERNAL_ERROR",
      "FORBIDDEN",
      "INVALID_PARAMS",
      undefined, // the server's own broadcast with invalid parameters
    ]);
  });

  it.each(combinations.slice(1))(
    "gives the same frames in the same order with schema $schema, dependency $dependency, guard $guard, handler $handler, output $output",
    async (mode) => {
      const baseline = await transcript(combinations[0] as Modes);
      expect(await transcript(mode)).toEqual(baseline);
    },
  );
});
