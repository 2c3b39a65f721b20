// What an attacker, or a buggy handler, tried against a server of a realistic shape: none
// of it may end the process, leak internals, or hold unbounded memory for one connection.
import * as v from "valibot";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type NodeServer, serve } from "../adapters/node.ts";
import { hubOf } from "../src/adapter.ts";
import {
  type Connection,
  type ErrorInfo,
  HandlerTimeoutError,
  SocketAPI,
  SocketAPIError,
} from "../src/index.ts";
import type { Session } from "../src/serve/session.ts";
import { createTestClient } from "../src/testing.ts";
import { openClient, type WsClient } from "./helpers/ws-client.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every unhandled rejection and uncaught exception while a test runs: each would end a server. */
const crashes: unknown[] = [];
const recordCrash = (error: unknown) => crashes.push(error);
beforeAll(() => {
  process.on("unhandledRejection", recordCrash);
  process.on("uncaughtException", recordCrash);
});
afterAll(() => {
  process.off("unhandledRejection", recordCrash);
  process.off("uncaughtException", recordCrash);
});
afterEach(async () => {
  // Rejections are reported after a turn: give them one before looking.
  await sleep(20);
  expect(crashes.splice(0)).toEqual([]);
});

const servers: NodeServer[] = [];
const clients: WsClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.ws.terminate();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
});
async function start(app: Parameters<typeof serve>[0]): Promise<NodeServer> {
  const server = await serve(app, { port: 0 });
  servers.push(server);
  return server;
}
async function connect(server: NodeServer, path = ""): Promise<WsClient> {
  const client = await openClient(`${server.url}${path}`);
  clients.push(client);
  return client;
}

/** A Proxy whose every trap throws: reading anything of it, even its prototype, fails. */
function hostile(): object {
  const trap = () => {
    throw new Error("trap");
  };
  return new Proxy(
    {},
    { get: trap, getPrototypeOf: trap, has: trap, ownKeys: trap, getOwnPropertyDescriptor: trap },
  );
}

/** A value whose `then` getter throws: `await` on it fails. */
function badThenable(): object {
  // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is what this test sends.
  return Object.defineProperty({}, "then", {
    get() {
      throw new Error("then getter");
    },
  });
}

const INTERNAL = { type: "error", code: "INTERNAL_ERROR", message: "Internal server error." };

describe("whatever a handler throws or returns, one well-formed frame answers and the process lives", () => {
  const errors: [unknown, ErrorInfo][] = [];
  const app = new SocketAPI({ onError: (error, info) => errors.push([error, info]) })
    .channel(
      "rooms/{room}",
      {
        params: v.objectAsync({
          room: v.string(),
          text: v.pipeAsync(
            v.string(),
            v.checkAsync(async (text) => {
              if (text === "boom") throw new Error("check failed inside the schema");
              return true;
            }),
          ),
        }),
      },
      ({ room, text }) => ({ room, text }),
    )
    .action("say", { input: v.object({ text: v.string() }) }, async ({ text }, ctx) => {
      try {
        await ctx.channels["rooms/{room}"]({ room: "1", text });
        return "sent";
      } catch {
        return "caught";
      }
    })
    .action("forget_await", (_input, ctx) => {
      void ctx.channels["rooms/{room}"]({ room: "1", text: "boom" });
      return "returned";
    })
    .action("bigint_issues", () => {
      throw new SocketAPIError("bad", { issues: [{ message: "x", path: [1n as never] }] });
    })
    .action("bigint_issues_async", async () => {
      throw new SocketAPIError("bad", { issues: [{ message: "x", path: [1n as never] }] });
    })
    .action("throws_proxy", () => {
      throw hostile();
    })
    .action("throws_proxy_async", async () => {
      throw hostile();
    })
    .action("returns_bad_thenable", () => badThenable())
    .action("resolves_bad_thenable", async () => badThenable())
    .action("returns_proxy", () => hostile())
    .action("returns_bigint", () => 1n)
    .action(
      "guard_throws_proxy",
      {
        guard: () => {
          throw hostile();
        },
      },
      () => "never",
    )
    .action(
      "schema_throws",
      {
        input: v.object({
          n: v.pipe(
            v.number(),
            v.check(() => {
              throw hostile();
            }),
          ),
        }),
      },
      () => "never",
    )
    .action(
      "output_throws",
      {
        output: v.pipe(
          v.string(),
          v.transform(() => {
            throw new Error("transform");
          }),
        ),
      },
      () => "x",
    );

  let server: NodeServer;
  beforeAll(async () => {
    server = await serve(app, { port: 0 });
  });
  afterAll(async () => {
    await server.close({ timeout: 100 });
  });
  afterEach(() => {
    errors.splice(0);
  });

  it("survives an async params schema that throws in a broadcast, caught by the action", async () => {
    const client = await connect(server);
    expect(
      await client.request({ type: "action", channel: "say", data: { text: "boom" }, id: 1 }),
    ).toEqual({ type: "action", channel: "say", status: "completed", data: "caught", id: 1 });
    expect(errors.map(([error, info]) => [(error as Error).message, info.phase])).toEqual([
      ["check failed inside the schema", "broadcast"],
    ]);
  });

  it("survives a broadcast that fails and that the handler forgot to await", async () => {
    const client = await connect(server);
    expect((await client.request({ type: "action", channel: "forget_await", id: 2 })).data).toBe(
      "returned",
    );
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect(errors[0]?.[1]).toMatchObject({ phase: "broadcast", channel: "rooms/{room}" });
  });

  it("answers 500 through the broadcast endpoint for the same schema, and lives", async () => {
    const response = await fetch(`http://127.0.0.1:${server.port}/_broadcast`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ channel: "rooms/1", data: { text: "boom" } }),
    });
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ error: "Internal server error." });
    const client = await connect(server);
    expect(
      (await client.request({ type: "action", channel: "say", data: { text: "hi" } })).data,
    ).toBe("sent");
  });

  it.each([
    "bigint_issues",
    "bigint_issues_async",
    "throws_proxy",
    "throws_proxy_async",
    "returns_bad_thenable",
    "resolves_bad_thenable",
    "returns_proxy",
    "returns_bigint",
    "guard_throws_proxy",
    "schema_throws",
    "output_throws",
  ])("answers %s with INTERNAL_ERROR, tells onError, and keeps serving", async (name) => {
    const client = await connect(server);
    const data = name === "schema_throws" ? { n: 1 } : undefined;
    expect(await client.request({ type: "action", channel: name, data, id: name })).toEqual({
      ...INTERNAL,
      channel: name,
      id: name,
    });
    await client.expectNone(30);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.[1]).toMatchObject({ phase: "action", channel: name });
    expect(
      (await client.request({ type: "action", channel: "say", data: { text: "hi" } })).data,
    ).toBe("sent");
  });
});

describe("hooks that throw or return the unexpected", () => {
  it("refuses the upgrade with 500 when onConnect throws a hostile value or returns a bad thenable", async () => {
    const errors: unknown[] = [];
    const onConnects: (() => object)[] = [
      () => {
        throw hostile();
      },
      () => badThenable(),
      () => hostile(),
    ];
    for (const onConnect of onConnects) {
      const server = await start(new SocketAPI({ onConnect, onError: (e) => errors.push(e) }));
      await expect(openClient(server.url)).rejects.toMatchObject({ status: 500 });
    }
    expect(errors).toHaveLength(3);
  });

  it("lives when onDisconnect and onError both throw", async () => {
    const onError = vi.fn(() => {
      throw hostile();
    });
    const app = new SocketAPI({
      onDisconnect: () => {
        throw new Error("disconnect hook");
      },
      onError,
    }).action("fail", () => {
      throw new Error("handler");
    });
    const server = await start(app);
    const client = await connect(server);
    expect((await client.request({ type: "action", channel: "fail" })).code).toBe("INTERNAL_ERROR");
    await client.close();
    await vi.waitFor(() => expect(onError).toHaveBeenCalledTimes(2));
  });
});

describe("memory per connection is bounded in bytes", () => {
  it("keeps at most maxQueuedBytes of frames waiting behind a slow handler; the rest are refused, not kept", async () => {
    let release = () => {};
    const app = new SocketAPI({ rateLimit: false, handlerTimeout: false }).action(
      "slow",
      { input: v.object({ pad: v.string() }) },
      () =>
        new Promise<string>((resolve) => {
          release = () => resolve("done");
        }),
    );
    // In memory, so that every frame has arrived before the first is released.
    const client = await createTestClient(app);
    const pad = "x".repeat(900 * 1024);
    for (let i = 0; i < 20; i++) {
      client.send({ type: "action", channel: "slow", data: { pad }, id: i });
    }
    await sleep(10);
    // The first runs; four (3.5 MiB, under the default 4 MiB) wait; the other fifteen are
    // refused and not kept: one queue entry answers them all, in their turn.
    expect((client.connection as Session<object>).queuedEntries).toBe(5);
    for (let i = 0; i < 5; i++) {
      release();
      expect(await client.next(5000)).toMatchObject({ status: "completed", id: i });
    }
    const refusals = [];
    for (let i = 0; i < 15; i++) refusals.push(await client.next(5000));
    expect(refusals).toEqual(
      Array(15).fill({
        type: "error",
        code: "RATE_LIMITED",
        message: "Too many bytes waiting: at most 4194304 bytes of messages.",
      }),
    );
  });

  it("answers refusals in their turn without growing the queue: a run of them is one entry", async () => {
    const app = new SocketAPI({
      rateLimit: false,
      maxQueuedMessages: 3,
      handlerTimeout: false,
    }).action("never", () => new Promise(() => {}));
    const client = await createTestClient(app);
    for (let i = 0; i < 90; i++) client.send({ type: "action", channel: "never", id: i });
    await vi.waitFor(() => expect((client.connection as Session<object>).queuedEntries).toBe(4));
    await client.expectNone(50);
    expect(client.status).toBe("open");
  });

  it("refuses a channel or action name over maxNameLength before keeping anything, without echoing it", async () => {
    const app = new SocketAPI().channel(
      "rooms/{room}",
      { params: v.object({ room: v.string() }) },
      () => 1,
    );
    const server = await start(app);
    const client = await connect(server);
    const long = `rooms/${"x".repeat(512 * 1024)}`;
    for (let i = 0; i < 5; i++) {
      expect(await client.request({ type: "subscribe", channel: long, id: i })).toEqual({
        type: "error",
        code: "INVALID_MESSAGE",
        message: "Channel exceeds 256 characters.",
        id: i,
      });
    }
    expect(await client.request({ type: "action", channel: "y".repeat(257) })).toMatchObject({
      code: "INVALID_MESSAGE",
    });
    expect(hubOf(app).index.size()).toBe(0);
    expect([...app.connections][0]?.subscriptions.size).toBe(0);
  });
});

describe("handler timeout", () => {
  it("answers HANDLER_TIMEOUT, aborts ctx.signal, frees the frame's place and drops the late result", async () => {
    const errors: unknown[] = [];
    let signal: AbortSignal | undefined;
    let finish = (_value: string) => {};
    const app = new SocketAPI({ handlerTimeout: 100, onError: (e) => errors.push(e) })
      .action("stuck", (_input, ctx) => {
        signal = ctx.signal;
        return new Promise<string>((resolve) => {
          finish = resolve;
        });
      })
      .action("quick", () => "quick");
    const server = await start(app);
    const client = await connect(server);
    client.send({ type: "action", channel: "stuck", id: 1 });
    client.send({ type: "action", channel: "quick", id: 2 });
    expect(await client.next(2000)).toEqual({
      type: "error",
      code: "HANDLER_TIMEOUT",
      message: "Handler did not finish within 100 ms.",
      channel: "stuck",
      id: 1,
    });
    expect(await client.next()).toMatchObject({ status: "completed", id: 2, data: "quick" });
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBeInstanceOf(HandlerTimeoutError);
    expect(errors).toEqual([expect.any(HandlerTimeoutError)]);
    finish("late");
    await client.expectNone(50);
  });

  it("gives up on a subscribe whose handler never settles: not subscribed", async () => {
    const app = new SocketAPI({ handlerTimeout: 50, onError: () => {} }).channel(
      "stuck",
      () => new Promise(() => {}),
    );
    const client = await createTestClient(app);
    expect(await client.request({ type: "subscribe", channel: "stuck" })).toMatchObject({
      code: "HANDLER_TIMEOUT",
      channel: "stuck",
    });
    expect(client.connection.subscriptions.size).toBe(0);
    expect(hubOf(app).subscriberCount("stuck")).toBe(0);
  });
});

describe("limits that hold", () => {
  it("admits at most maxConnections while an async onConnect is under way", async () => {
    const app = new SocketAPI({
      maxConnections: 10,
      onConnect: async () => {
        await sleep(50);
        return {};
      },
    });
    const server = await start(app);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 50 }, () => openClient(server.url)),
    );
    for (const outcome of outcomes) if (outcome.status === "fulfilled") clients.push(outcome.value);
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(10);
    expect(
      outcomes.filter(
        (o) => o.status === "rejected" && (o.reason as { status?: number }).status === 503,
      ),
    ).toHaveLength(40);
    expect(app.connections.size).toBe(10);
  });

  it("with rateLimit: false, a full queue is refused as such and nothing is ever rate-limited", async () => {
    let release = () => {};
    const app = new SocketAPI({ rateLimit: false, maxQueuedMessages: 2, handlerTimeout: false })
      .action(
        "slow",
        () =>
          new Promise<string>((resolve) => {
            release = () => resolve("done");
          }),
      )
      .action("one", () => 1);
    const client = await createTestClient(app);
    for (let i = 0; i < 5; i++) client.send({ type: "action", channel: "slow", id: i });
    await vi.waitFor(() => expect((client.connection as Session<object>).queuedEntries).toBe(3));
    for (let i = 0; i < 3; i++) {
      release();
      expect(await client.next()).toMatchObject({ status: "completed", id: i });
    }
    expect([await client.next(), await client.next()]).toEqual(
      Array(2).fill({
        type: "error",
        code: "RATE_LIMITED",
        message: "Too many messages waiting: at most 2.",
      }),
    );
    const answers = await Promise.all(Array.from({ length: 2000 }, () => client.action("one")));
    expect(answers.every((answer) => answer === 1)).toBe(true);
  });

  it("holds maxSubscriptions against concurrent subscribes", async () => {
    const app = new SocketAPI({ maxSubscriptions: 3, concurrency: 10 }).channel(
      "rooms/{room}",
      { params: v.object({ room: v.string() }) },
      async () => {
        await sleep(20);
        return 0;
      },
    );
    const client = await createTestClient(app);
    for (let room = 0; room < 10; room++) {
      client.send({ type: "subscribe", channel: `rooms/${room}`, id: room });
    }
    const answers = await Promise.all(Array.from({ length: 10 }, () => client.next()));
    expect(answers.filter((frame) => frame.type === "subscribed")).toHaveLength(3);
    expect(answers.filter((frame) => frame.code === "TOO_MANY_SUBSCRIPTIONS")).toHaveLength(7);
    expect(client.connection.subscriptions.size).toBe(3);
  });
});

describe("authorization", () => {
  const app = new SocketAPI({ onError: () => {} })
    .channel(
      "rooms/{room}",
      { params: v.object({ room: v.string(), text: v.optional(v.string(), "") }) },
      (p) => p,
    )
    .channel(
      "rooms/{room}/admin",
      {
        params: v.object({ room: v.string(), text: v.optional(v.string(), "") }),
        guard: (_params, ctx) => (ctx.connection as Connection).state.admin === true,
      },
      (p) => p,
    )
    .action("say", { input: v.object({ room: v.string(), text: v.string() }) }, (input, ctx) =>
      ctx.channels["rooms/{room}"](input),
    );

  it("refuses a broadcast whose name parameter holds a '/', so it cannot reach another channel", async () => {
    const admin = await createTestClient(app);
    (admin.connection as Connection).state = { admin: true };
    expect(await admin.request({ type: "subscribe", channel: "rooms/42/admin" })).toMatchObject({
      type: "subscribed",
    });
    const attacker = await createTestClient(app);
    expect(
      await attacker.request({
        type: "action",
        channel: "say",
        data: { room: "42/admin", text: "owned" },
      }),
    ).toMatchObject({ type: "error", code: "INTERNAL_ERROR" });
    await expect(app.channels["rooms/{room}"]({ room: "", text: "x" })).rejects.toMatchObject({
      name: "InvalidChannelParamsError",
      issues: [{ path: ["room"] }],
    });
    await admin.expectNone(30);
  });
});
