// What the typed client infers from `typeof app`, and what it refuses to compile.
import * as v from "valibot";
import { describe, expectTypeOf, it } from "vitest";
import WebSocket from "ws";
import type seed from "../examples/main.ts";
import {
  type ActionStream,
  createClient,
  type Jsonify,
  type SocketAPIClient,
} from "../src/client/index.ts";
import { SocketAPI, subscribeParam } from "../src/index.ts";
import type conformance from "./servers/conformance-app.ts";

declare const client: SocketAPIClient<typeof seed>;
declare const full: SocketAPIClient<typeof conformance>;

describe("actions", () => {
  it("types an action's input and its result", () => {
    expectTypeOf(client.action("add_numbers", { a: 1, b: 2 })).toEqualTypeOf<Promise<number>>();
    expectTypeOf(client.action("send_message", { message: "hi" })).toEqualTypeOf<
      Promise<undefined>
    >();
  });

  it("refuses an unknown action, a wrong input and a missing one", () => {
    // @ts-expect-error no such action
    client.action("substract", { a: 1, b: 2 });
    // @ts-expect-error a must be a number
    client.action("add_numbers", { a: "1", b: 2 });
    // @ts-expect-error b is missing
    client.action("add_numbers", { a: 1 });
    // @ts-expect-error the input is required
    client.action("add_numbers");
  });

  it("lets an action without input be called without one", () => {
    expectTypeOf(full.action("nothing")).toEqualTypeOf<Promise<undefined>>();
    expectTypeOf(full.action("stats")).toEqualTypeOf<
      Promise<{ connections: number; chat: number; firehose: number }>
    >();
  });

  it("types a streaming action's chunks and its result, and takes a signal", () => {
    const app = new SocketAPI()
      .action("ask", { input: v.object({ question: v.string() }) }, async function* ({ question }) {
        for (const word of question.split(" ")) yield { word, at: new Date() };
        return question.length;
      })
      .action("ticks", async function* () {
        yield 1;
      })
      .action("checked", { output: v.number() }, async function* () {
        yield 1;
        return 2;
      });
    const streaming = createClient<typeof app>("ws://127.0.0.1:1/", { WebSocket });
    const reply = streaming.stream("ask", { question: "why" }, { signal: AbortSignal.timeout(1) });
    expectTypeOf(reply).toExtend<AsyncIterable<{ word: string; at: string }>>();
    expectTypeOf(reply.result).toEqualTypeOf<Promise<number>>();
    expectTypeOf(streaming.action("ask", { question: "why" })).toEqualTypeOf<Promise<number>>();
    expectTypeOf(streaming.stream("ticks")).toExtend<AsyncIterable<number>>();
    expectTypeOf(streaming.stream("ticks").result).toEqualTypeOf<Promise<undefined>>();
    expectTypeOf(streaming.stream("checked")).toExtend<AsyncIterable<number>>();
    expectTypeOf(
      client.action("add_numbers", { a: 1, b: 2 }, { signal: AbortSignal.abort() }),
    ).toEqualTypeOf<Promise<number>>();
    // @ts-expect-error the options come after the input
    client.action("add_numbers", { signal: AbortSignal.abort() });
    // An action that does not stream has no chunks.
    expectTypeOf(client.stream("add_numbers", { a: 1, b: 2 })).toEqualTypeOf<
      ActionStream<never, number>
    >();
    streaming.close();
  });

  it("types results as they come out of JSON", () => {
    const app = new SocketAPI().action("when", () => ({
      at: new Date(),
      tags: new Set(["a"]),
      n: 1,
    }));
    const typed = createClient<typeof app>("ws://x", { WebSocket });
    expectTypeOf(typed.action("when")).toEqualTypeOf<
      Promise<{ at: string; tags: Record<never, never>; n: number }>
    >();
    expectTypeOf<Jsonify<{ f: () => void; u?: number | undefined }>>().toEqualTypeOf<{
      u?: number;
    }>();
  });
});

describe("channels", () => {
  it("types a channel's data, by plain name and by a concrete form of a template", () => {
    client.subscribe("chat", (data) => {
      expectTypeOf(data).toEqualTypeOf<{ message: string }>();
    });
    full.subscribe("rooms/42", (data) => {
      expectTypeOf(data).toEqualTypeOf<{ room: string; text: string }>();
    });
  });

  it("refuses an unknown channel", () => {
    // @ts-expect-error no such channel
    client.subscribe("chatroom", () => {});
    // @ts-expect-error rooms/{room} needs a room
    full.subscribe("room/42", () => {});
  });

  it("requires the subscribe-time parameters a channel needs, and only those", () => {
    full.subscribe("private", { token: "secret" }, (data) => {
      expectTypeOf(data).toEqualTypeOf<{ welcome: boolean }>();
    });
    // @ts-expect-error the token is required
    full.subscribe("private", () => {});
    // @ts-expect-error the token is a string
    full.subscribe("private", { token: 1 }, () => {});
    const app = new SocketAPI().channel(
      "feed",
      {
        params: v.object({
          tag: subscribeParam(v.optional(v.string(), "")),
          limit: v.optional(v.number(), 10),
        }),
      },
      ({ tag }) => tag,
    );
    const typed = createClient<typeof app>("ws://x", { WebSocket });
    typed.subscribe("feed", (data) => expectTypeOf(data).toEqualTypeOf<string>());
    typed.subscribe("feed", { tag: "x" }, () => {});
    // @ts-expect-error limit is not a subscribe-time parameter
    typed.subscribe("feed", { limit: 5 }, () => {});
  });

  it("takes presence handlers alone, without a data listener", () => {
    full.subscribe("lobby", {
      members: (members, count) => {
        expectTypeOf(members[0]?.info).toEqualTypeOf<{ name: string } | undefined>();
        expectTypeOf(count).toEqualTypeOf<number>();
      },
      join: (member) => expectTypeOf(member.user).toEqualTypeOf<string>(),
    });
  });
});

describe("construction", () => {
  it("takes the ws package's WebSocket class on Node 20", () => {
    expectTypeOf(createClient<typeof seed>("ws://127.0.0.1:8000/", { WebSocket })).toEqualTypeOf<
      SocketAPIClient<typeof seed>
    >();
  });
});
