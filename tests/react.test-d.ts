// What the hooks of socketapi/react infer from `typeof app`, and what they refuse.
import { describe, expectTypeOf, it } from "vitest";
import type seed from "../examples/main.ts";
import type { SocketAPIClientError } from "../src/client/index.ts";
import { createSocketAPIHooks } from "../src/react/index.ts";
import type conformance from "./servers/conformance-app.ts";

const { useAction, useChannel, usePresence, useConnection } = createSocketAPIHooks<typeof seed>();
const full = createSocketAPIHooks<typeof conformance>();

describe("useAction", () => {
  it("types the call's input and the result", () => {
    const add = useAction("add_numbers");
    expectTypeOf(add.call).parameter(0).toEqualTypeOf<{ a: number; b: number }>();
    expectTypeOf(add.data).toEqualTypeOf<number | undefined>();
    expectTypeOf(add.error).toEqualTypeOf<SocketAPIClientError | undefined>();
    expectTypeOf(add.call({ a: 1, b: 2 })).toEqualTypeOf<Promise<number>>();
  });

  it("refuses an unknown action and a wrong input", () => {
    // @ts-expect-error no such action
    useAction("substract");
    // @ts-expect-error a must be a number
    useAction("add_numbers").call({ a: "1", b: 2 });
  });
});

describe("useChannel", () => {
  it("types the latest data, and a reducer's state", () => {
    expectTypeOf(useChannel("chat").data).toEqualTypeOf<{ message: string } | undefined>();
    const texts = useChannel("chat", {
      initial: [] as string[],
      reducer: (state, data) => [...state, data.message],
    });
    expectTypeOf(texts.data).toEqualTypeOf<string[]>();
    expectTypeOf(texts.recovered).toEqualTypeOf<boolean>();
  });

  it("refuses a misspelled channel name", () => {
    // @ts-expect-error no channel "chta"
    useChannel("chta");
    useChannel("chat", {
      initial: 0,
      // @ts-expect-error the reducer's data is the channel's
      reducer: (n: number, data: { count: number }) => n + data.count,
    });
  });

  it("takes the concrete names of a template", () => {
    expectTypeOf(full.useChannel("rooms/42").data).toEqualTypeOf<
      { room: string; text: string } | undefined
    >();
  });
});

describe("useStream, usePresence, useConnection", () => {
  it("types a stream's chunks and result", () => {
    const stream = full.useStream("stream_count", { to: 3 });
    expectTypeOf(stream.chunks).toEqualTypeOf<readonly number[]>();
    expectTypeOf(stream.done).toEqualTypeOf<boolean>();
  });

  it("types presence's members and the connection's status", () => {
    expectTypeOf(usePresence("chat").count).toEqualTypeOf<number>();
    expectTypeOf(useConnection().status).toEqualTypeOf<
      "connecting" | "open" | "reconnecting" | "closed"
    >();
    // @ts-expect-error no channel "lobbby"
    usePresence("lobbby");
  });
});
