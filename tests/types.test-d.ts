// The types a handler sees and the types a client will infer from `typeof app`.
import * as v from "valibot";
import { describe, expectTypeOf, it } from "vitest";
import type seed from "../examples/main.ts";
import {
  type ActionContext,
  type ChannelContext,
  type ChannelHandle,
  depends,
  type PresenceCount,
  Router,
  SocketAPI,
  subscribeParam,
} from "../src/index.ts";

type ActionsOf<T> = T extends SocketAPI<infer _S, infer A, infer _C> ? A : never;
type ChannelsOf<T> = T extends SocketAPI<infer _S, infer _A, infer C> ? C : never;
type StateOf<T> = T extends SocketAPI<infer S, infer _A, infer _C> ? S : never;

describe("the seed example's inferred API", () => {
  it("knows add_numbers takes two numbers and returns a number", () => {
    expectTypeOf<ActionsOf<typeof seed>["add_numbers"]["input"]>().toEqualTypeOf<{
      a: number;
      b: number;
    }>();
    expectTypeOf<ActionsOf<typeof seed>["add_numbers"]["output"]>().toEqualTypeOf<number>();
  });

  it("knows send_message returns nothing and chat carries a message", () => {
    expectTypeOf<ActionsOf<typeof seed>["send_message"]["output"]>().toEqualTypeOf<void>();
    expectTypeOf<ChannelsOf<typeof seed>["chat"]["data"]>().toEqualTypeOf<{ message: string }>();
    expectTypeOf<ChannelsOf<typeof seed>["chat"]["params"]>().toEqualTypeOf<{
      message?: string | undefined;
    }>();
  });

  it("has no other actions", () => {
    expectTypeOf<keyof ActionsOf<typeof seed>>().toEqualTypeOf<"add_numbers" | "send_message">();
    expectTypeOf<keyof ChannelsOf<typeof seed>>().toEqualTypeOf<"chat">();
  });
});

describe("handler types", () => {
  it("gives an action handler the schema's output and a typed context", () => {
    new SocketAPI().action(
      "x",
      {
        input: v.object({
          n: v.pipe(v.string(), v.transform(Number)),
          flag: v.optional(v.boolean(), false),
        }),
      },
      (input, ctx) => {
        expectTypeOf(input).toEqualTypeOf<{ n: number; flag: boolean }>();
        expectTypeOf(ctx).toMatchTypeOf<ActionContext>();
        expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>();
        expectTypeOf(ctx.app.presence).returns.resolves.toEqualTypeOf<
          { user: string; info: unknown }[]
        >();
        expectTypeOf(ctx.app.presenceCount).returns.resolves.toEqualTypeOf<PresenceCount>();
      },
    );
  });

  it("gives a handler without input undefined", () => {
    new SocketAPI().action("x", (input) => {
      expectTypeOf(input).toEqualTypeOf<undefined>();
    });
  });

  it("infers the connection state from onConnect, ignoring a refusal Response", () => {
    const app = new SocketAPI({
      onConnect: (request) =>
        request.headers.has("authorization")
          ? { user: "ada", admin: false }
          : new Response(null, { status: 401 }),
    }).action("me", (_, ctx) => {
      expectTypeOf(ctx.connection.state).toEqualTypeOf<{ user: string; admin: boolean }>();
      return ctx.connection.state.user;
    });
    expectTypeOf<StateOf<typeof app>>().toEqualTypeOf<{ user: string; admin: boolean }>();
  });

  it("types a client's output from an output schema, and the handler's return against its input", () => {
    const app = new SocketAPI().action(
      "date",
      {
        output: v.pipe(
          v.string(),
          v.transform((s) => s.length),
        ),
      },
      () => "2026-11-27",
    );
    expectTypeOf<ActionsOf<typeof app>["date"]["output"]>().toEqualTypeOf<number>();
    // @ts-expect-error the handler must return the output schema's input: a string
    new SocketAPI().action("bad", { output: v.string() }, () => 5);
  });

  it("infers a handler that returns a union of objects, or a promise of one", () => {
    const app = new SocketAPI()
      .action("either", (): number | { a: 1 } => 1)
      .action("later", async (): Promise<number | { a: 1 }> => 1)
      .channel(
        "mixed",
        { params: v.object({ n: v.optional(v.number(), 0) }) },
        ({ n }): number | { a: 1 } => n,
      );
    expectTypeOf<ActionsOf<typeof app>["either"]["output"]>().toEqualTypeOf<number | { a: 1 }>();
    expectTypeOf<ActionsOf<typeof app>["later"]["output"]>().toEqualTypeOf<number | { a: 1 }>();
    expectTypeOf<ChannelsOf<typeof app>["mixed"]["data"]>().toEqualTypeOf<number | { a: 1 }>();
  });

  it("gives a channel handler a context that has a connection only on subscribe", () => {
    new SocketAPI().channel("c", (_, ctx) => {
      expectTypeOf(ctx).toMatchTypeOf<ChannelContext>();
      if (ctx.event === "subscribe") expectTypeOf(ctx.connection.id).toEqualTypeOf<string>();
      else expectTypeOf(ctx.connection).toEqualTypeOf<undefined>();
    });
  });

  it("types ctx.channels with the channels declared before", () => {
    new SocketAPI()
      .channel("news", { params: v.object({ text: v.string() }) }, ({ text }) => text)
      .action("post", async (_, ctx) => {
        expectTypeOf(ctx.channels.news).toEqualTypeOf<
          ChannelHandle<{ params: { text: string }; subscribe: Record<never, never>; data: string }>
        >();
        await ctx.channels.news({ text: "hi" });
        // @ts-expect-error text must be a string
        await ctx.channels.news({ text: 1 });
        // @ts-expect-error no such channel
        ctx.channels.nope;
      });
  });
});

describe("dependencies and subscribe-time parameters", () => {
  it("types a dependency as its client input on the wire and its result in the handler", () => {
    const user = depends(v.object({ token: v.string() }), async ({ token }) => ({
      id: token.length,
    }));
    const app = new SocketAPI().action("me", { input: v.object({ user }) }, ({ user }) => {
      expectTypeOf(user).toEqualTypeOf<{ id: number }>();
      return user.id;
    });
    expectTypeOf<ActionsOf<typeof app>["me"]["input"]>().toEqualTypeOf<{
      user: { token: string };
    }>();
  });

  it("lets a client send only the subscribe-time parameters", () => {
    const app = new SocketAPI().channel(
      "rooms/{room}",
      {
        params: v.object({
          room: v.string(),
          token: subscribeParam(v.string()),
          text: v.optional(v.string(), ""),
        }),
      },
      ({ room, text }) => ({ room, text }),
    );
    type Rooms = ChannelsOf<typeof app>["rooms/{room}"];
    expectTypeOf<Rooms["subscribe"]>().toEqualTypeOf<{ token: string }>();
    expectTypeOf<Rooms["data"]>().toEqualTypeOf<{ room: string; text: string }>();
  });
});

describe("routers", () => {
  it("prefixes the names of an included router in the app's type", () => {
    const admin = new Router({ prefix: "admin." })
      .action("ping", () => "pong" as const)
      .channel("stats", () => ({ users: 1 }));
    const app = new SocketAPI().include(admin).action("root", () => 1);
    expectTypeOf<keyof ActionsOf<typeof app>>().toEqualTypeOf<"admin.ping" | "root">();
    expectTypeOf<ActionsOf<typeof app>["admin.ping"]["output"]>().toEqualTypeOf<"pong">();
    expectTypeOf<keyof ChannelsOf<typeof app>>().toEqualTypeOf<"admin.stats">();
    expectTypeOf(app.channels["admin.stats"]).toBeFunction();
  });

  it("infers the prefix given on include, also for a router with an explicit state type", () => {
    interface State {
      user: string;
    }
    const chat = new Router<State>()
      .action("post", (_input, ctx) => ctx.connection.state.user)
      .channel("rooms/{room}", { params: v.object({ room: v.string() }) }, ({ room }) => room);
    const app = new SocketAPI<State>().include(chat, { prefix: "chat/" });
    expectTypeOf<keyof ActionsOf<typeof app>>().toEqualTypeOf<"chat/post">();
    expectTypeOf<keyof ChannelsOf<typeof app>>().toEqualTypeOf<"chat/rooms/{room}">();
    const v1 = new Router<State>().include(chat, { prefix: "v1/" });
    const nested = new SocketAPI<State>().include(v1, { prefix: "api/" });
    expectTypeOf<keyof ActionsOf<typeof nested>>().toEqualTypeOf<"api/v1/post">();
  });

  it("refuses a prefix in the constructor of a router typed with an explicit state (it could not be inferred)", () => {
    interface State {
      user: string;
    }
    // @ts-expect-error: with `<State>` given, the prefix's type is not inferred: use include's.
    new Router<State>({ prefix: "chat/" });
  });
});

describe("context-only dependencies and ctx.app", () => {
  it("leaves a dependency that takes nothing from the client out of the client's input", () => {
    const user = depends((ctx) => ctx.connection?.state);
    const app = new SocketAPI().action(
      "post",
      { input: v.object({ text: v.string(), user }) },
      ({ text, user }) => ({ text, user }),
    );
    expectTypeOf<ActionsOf<typeof app>["post"]["input"]>().toEqualTypeOf<{ text: string }>();
  });

  it("gives handlers the app's connections and subscriber counts without naming the app", () => {
    const app = new SocketAPI<{ user: string }>({ onConnect: () => ({ user: "ada" }) }).action(
      "stats",
      (_input, ctx) => ({
        users: [...ctx.app.connections].map((connection) => connection.state.user),
        chat: ctx.app.subscriberCount("chat"),
      }),
    );
    expectTypeOf<ActionsOf<typeof app>["stats"]["output"]>().toEqualTypeOf<{
      users: string[];
      chat: number;
    }>();
  });
});
