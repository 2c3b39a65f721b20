// socketapi/client against real servers: a Node process and a Bun process serving the
// conformance app, an in-process Node server for faults, and a SocketAPI 0.2 look-alike.
import { once } from "node:events";
import { join } from "node:path";
import * as v from "valibot";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { type NodeServer, serve } from "../adapters/node.ts";
import { hubOf } from "../src/adapter.ts";
import {
  type ConnectionStatus,
  createClient,
  type SocketAPIClient,
  SocketAPIClientError,
} from "../src/client/index.ts";
import { isRetryableStatus, statusOfErrorEvent } from "../src/client/refusal.ts";
import { SocketAPI } from "../src/index.ts";
import { root, type ServerProcess, startServer } from "./helpers/server-process.ts";
import type conformanceApp from "./servers/conformance-app.ts";

type App = typeof conformanceApp;

const clients: SocketAPIClient<unknown>[] = [];
function connect<T = App>(
  url: string,
  options: Parameters<typeof createClient>[1] = {},
): SocketAPIClient<T> {
  const client = createClient<T>(url, {
    WebSocket,
    reconnect: { initialDelay: 20, maxDelay: 200 },
    ...options,
  });
  clients.push(client as SocketAPIClient<unknown>);
  return client;
}
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

async function until(condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const runtimes = [
  { name: "Node", command: [process.execPath, "--import", "tsx", "tests/servers/node.ts"] },
  { name: "Bun", command: [join(root, "node_modules", ".bin", "bun"), "tests/servers/bun.ts"] },
];

describe.each(runtimes)("the client against a real $name server", ({ command }) => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer(command);
  }, 30_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("runs many requests at once and matches every answer by id", async () => {
    const client = connect(server.url);
    const sums = await Promise.all(
      Array.from({ length: 100 }, (_, i) => client.action("add_numbers", { a: i, b: 1 })),
    );
    expect(sums).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(await client.action("nothing")).toBeUndefined();
  });

  it("rejects with the server's code, message and issues", async () => {
    const client = connect(server.url);
    const invalid = await client
      .action("add_numbers", { a: "five" as unknown as number, b: 3 })
      .catch((e) => e);
    expect(invalid).toBeInstanceOf(SocketAPIClientError);
    expect(invalid).toMatchObject({
      code: "INVALID_PARAMS",
      message: "Invalid parameters for action 'add_numbers'",
      channel: "add_numbers",
      issues: [{ path: ["a"] }],
    });
    await expect(client.action("fail_public")).rejects.toMatchObject({
      code: "ROOM_FULL",
      message: "Room is full.",
    });
    await expect(client.action("guarded", { n: -1 })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(client.action("fail_internal")).rejects.toMatchObject({ code: "INTERNAL_ERROR" });
  });

  it("subscribes, shares one subscription between listeners, and unsubscribes", async () => {
    const reader = connect(server.url);
    const writer = connect(server.url);
    const first: unknown[] = [];
    const second: unknown[] = [];
    const stopFirst = reader.subscribe("chat", (data) => first.push(data.message));
    const stopSecond = reader.subscribe("chat", (data) => second.push(data.message));
    await Promise.all([stopFirst.ready, stopSecond.ready]);
    await writer.action("send_message", { message: "one" });
    await until(() => first.length === 1 && second.length === 1);
    await stopFirst();
    await writer.action("send_message", { message: "two" });
    await until(() => second.length === 2);
    expect(first).toEqual(["one"]);
    await stopSecond();
    await writer.action("send_message", { message: "three" });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(second).toEqual(["one", "two"]);
    expect((await writer.action("stats")).chat).toBe(0);
  });

  it("subscribes to parameterized channels with subscribe-time parameters and initial data", async () => {
    const client = connect(server.url);
    const rooms: unknown[] = [];
    const stopRoom = client.subscribe("rooms/5", (data) => rooms.push(data));
    await stopRoom.ready;
    expect(await client.action("say", { room: "5", text: "hello" })).toBe(1);
    await until(() => rooms.length === 1);
    expect(rooms).toEqual([{ room: "5", text: "hello" }]);

    const welcome: unknown[] = [];
    const stopPrivate = client.subscribe("private", { token: "secret" }, (data) =>
      welcome.push(data),
    );
    await stopPrivate.ready;
    await until(() => welcome.length === 1);
    expect(welcome).toEqual([{ welcome: true }]);
    const refused = client.subscribe("private", { token: "guess" }, () => {});
    // The same channel name shares the first subscription: no second subscribe is sent.
    await expect(refused.ready).resolves.toBeUndefined();
    const other = connect(server.url);
    await expect(
      other.subscribe("private", { token: "guess" }, () => {}).ready,
    ).rejects.toMatchObject({
      code: "FORBIDDEN",
      message: "Invalid token.",
    });
  });

  it("reconnects after a server restart, resubscribes once, and receives new broadcasts", async () => {
    const client = connect(server.url);
    const statuses: ConnectionStatus[] = [];
    client.onStatus((status) => statuses.push(status));
    const messages: string[] = [];
    await client.subscribe("chat", (data) => messages.push(data.message)).ready;

    await server.stop();
    server = await startServer(command, { port: server.port });
    await until(() => client.status === "open");
    const sender = connect(server.url);
    // The subscription is back once the server counts it: exactly one.
    const stats = async () => (await sender.action("stats")).chat;
    const deadline = Date.now() + 5000;
    while ((await stats()) !== 1 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(await stats()).toBe(1);
    await sender.action("send_message", { message: "after restart" });
    await until(() => messages.length === 1);
    expect(messages).toEqual(["after restart"]);
    // Open, then reconnecting and connecting (as often as the restart took), then open
    // again: never closed, which is for good.
    expect(statuses[0]).toBe("open");
    expect(statuses.slice(1, 3)).toEqual(["reconnecting", "connecting"]);
    expect(statuses).not.toContain("closed");
    expect(statuses.at(-1)).toBe("open");
  });
});

describe("the client's faults, against an in-process Node server", () => {
  let node: NodeServer;
  const app = new SocketAPI({ concurrency: 16 })
    .action("slow", async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      return "slow";
    })
    .action("echo", { input: v.object({ n: v.number() }) }, async ({ n }) => {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20));
      return n;
    })
    .channel("ticks", () => "tick");

  beforeAll(async () => {
    node = await serve(app, { port: 0 });
  });
  afterAll(async () => {
    await node.close();
  });

  it("matches answers that come back out of order by their ids", async () => {
    const client = connect<typeof app>(node.url);
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, n) => client.action("echo", { n })),
    );
    expect(answers).toEqual(Array.from({ length: 50 }, (_, n) => n));
  });

  it("fails an in-flight request with DISCONNECTED when the socket drops, then reconnects", async () => {
    const client = connect<typeof app>(node.url);
    await client.opened();
    const inFlight = client.action("slow");
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const connection of app.connections) connection.close(4001, "kicked");
    await expect(inFlight).rejects.toMatchObject({ code: "DISCONNECTED" });
    await until(() => client.status === "open");
    expect(await client.action("echo", { n: 7 })).toBe(7);
  });

  it("resubscribes after its socket is killed, without a duplicate subscription", async () => {
    const client = connect<typeof app>(node.url);
    const ticks: unknown[] = [];
    await client.subscribe("ticks", (data) => ticks.push(data)).ready;
    for (const connection of app.connections) connection.close(4001, "kicked");
    await until(() => client.status === "reconnecting");
    await until(() => client.status === "open" && hubOf(app).subscriberCount("ticks") === 1);
    expect(await app.channels.ticks()).toBe(1);
    await until(() => ticks.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(ticks).toEqual(["tick"]);
  });

  it("times out a request with TIMEOUT", async () => {
    const client = connect<typeof app>(node.url, { timeout: 50 });
    await expect(client.action("slow")).rejects.toMatchObject({ code: "TIMEOUT" });
  });

  it("fails pending requests with CLOSED when closed, and does not reconnect", async () => {
    const client = connect<typeof app>(node.url);
    await client.opened();
    const pending = client.action("slow");
    client.close();
    await expect(pending).rejects.toMatchObject({ code: "CLOSED" });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(client.status).toBe("closed");
    await expect(client.action("echo", { n: 1 })).rejects.toMatchObject({ code: "CLOSED" });
  });

  it("queues requests made before the connection opens", async () => {
    const client = connect<typeof app>(node.url);
    expect(client.status).toBe("connecting");
    expect(await client.action("echo", { n: 3 })).toBe(3);
  });

  it("tells onError only what no promise awaits, each a SocketAPIClientError with a code", async () => {
    const client = connect<typeof app>(node.url);
    const errors: SocketAPIClientError[] = [];
    client.onError((error) => {
      // Typed as the client's error: its code is there without a cast.
      errors.push(error);
      expect(error.code).toEqual(expect.any(String));
    });
    // A refusal whose `ready` is awaited goes there, and only there.
    const awaited = client.subscribe("nowhere" as "ticks", () => {});
    await expect(awaited.ready).rejects.toMatchObject({ code: "NOT_FOUND" });
    // One nobody awaits goes to onError.
    client.subscribe("nowhere_either" as "ticks", () => {});
    // A listener that throws: its error is the cause.
    const boom = new Error("listener bug");
    await client.subscribe("ticks", () => {
      throw boom;
    }).ready;
    await app.channels.ticks();
    await until(() => errors.length === 2);
    expect(errors.map((error) => [error.code, error.channel])).toEqual([
      ["NOT_FOUND", "nowhere_either"],
      ["LISTENER_FAILED", undefined],
    ]);
    expect(errors.every((error) => error instanceof SocketAPIClientError)).toBe(true);
    expect(errors[1]?.cause).toBe(boom);
  });
});

describe("the client when the connection cannot open", () => {
  let node: NodeServer;
  let upgrades = 0;
  const app = new SocketAPI({
    onConnect(request) {
      upgrades++;
      const token = new URL(request.url).searchParams.get("token");
      if (token === "busy") return new Response("Try later", { status: 503 });
      if (token !== "good") return new Response("Invalid token", { status: 401 });
      return {};
    },
  }).action("hello", () => "hi");

  beforeAll(async () => {
    node = await serve(app, { port: 0 });
  });
  afterAll(async () => {
    await node.close();
  });

  it("closes quietly while its socket is still connecting (no unhandled 'error' from ws)", async () => {
    const uncaught: unknown[] = [];
    const record = (error: unknown) => uncaught.push(error);
    process.on("uncaughtException", record);
    try {
      for (let i = 0; i < 20; i++) {
        const client = connect<typeof app>(`${node.url}?token=good`);
        expect(client.status).toBe("connecting");
        client.close();
        expect(client.status).toBe("closed");
        await expect(client.action("hello")).rejects.toMatchObject({ code: "CLOSED" });
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      process.off("uncaughtException", record);
    }
    expect(uncaught).toEqual([]);
  });

  it("stops on a refusal that will not change, and says why: REFUSED with the status and body", async () => {
    const before = upgrades;
    const client = connect<typeof app>(`${node.url}?token=bad`);
    const errors: unknown[] = [];
    client.onError((error) => errors.push(error));
    const pending = client.action("hello");
    const refused = await pending.catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SocketAPIClientError);
    expect(refused).toMatchObject({
      code: "REFUSED",
      status: 401,
      message: "The server refused the connection: HTTP 401 Invalid token.",
    });
    expect(client.status).toBe("closed");
    await expect(client.opened()).rejects.toMatchObject({ code: "REFUSED" });
    await expect(client.action("hello")).rejects.toMatchObject({ code: "REFUSED", status: 401 });
    // No retry: one upgrade, however long we wait past the reconnect delays (20-200 ms).
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(upgrades - before).toBe(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "REFUSED", status: 401 });
  });

  it("keeps retrying a refusal that may pass (503), telling onError each time", async () => {
    const before = upgrades;
    const client = connect<typeof app>(`${node.url}?token=busy`);
    const errors: SocketAPIClientError[] = [];
    client.onError((error) => errors.push(error));
    await until(() => upgrades - before >= 3);
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(errors[0]).toMatchObject({
      code: "CONNECT_FAILED",
      status: 503,
      message: "The connection could not be opened: HTTP 503 Try later.",
    });
    expect(client.status).not.toBe("open");
  });

  it("reads the refusal's status from the error events of Bun and Deno too", () => {
    expect(
      statusOfErrorEvent({
        message: "WebSocket connection to 'ws://h/' failed: Expected 101 status code: 403",
      }),
    ).toBe(403);
    expect(
      statusOfErrorEvent({
        message: "NetworkError: failed to connect to WebSocket: Invalid status code: 404",
      }),
    ).toBe(404);
    expect(statusOfErrorEvent({ error: new Error("Unexpected server response: 401") })).toBe(401);
    // Browsers and Node 22's global WebSocket do not say: the client keeps retrying.
    expect(statusOfErrorEvent({ message: "Received network error or non-101 status code." })).toBe(
      undefined,
    );
    expect(isRetryableStatus(undefined)).toBe(true);
    expect(isRetryableStatus(503)).toBe(true);
    expect(isRetryableStatus(429)).toBe(true);
    expect(isRetryableStatus(401)).toBe(false);
    expect(isRetryableStatus(404)).toBe(false);
  });

  it("ignores frames that are JSON but not objects instead of throwing in the socket's handler", async () => {
    const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
    await once(wss, "listening");
    wss.on("connection", (ws) => {
      ws.on("message", () => {
        ws.send("null");
        ws.send("42");
        ws.send('{"type":"action","channel":"hello","status":"completed","data":"hi","id":1}');
      });
    });
    try {
      const client = connect<typeof app>(
        `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`,
      );
      const errors: SocketAPIClientError[] = [];
      client.onError((error) => errors.push(error));
      expect(await client.action("hello")).toBe("hi");
      expect(errors.map((error) => error.code)).toEqual(["INVALID_FRAME", "INVALID_FRAME"]);
    } finally {
      for (const ws of wss.clients) ws.terminate();
      await new Promise((resolve) => wss.close(resolve));
    }
  });
});

describe("subscribes a busy server answers too late", () => {
  /** A server that answers subscribes except those `ignore` picks, and logs every frame. */
  async function busyServer(ignore: (frame: { type: string }, connection: number) => boolean) {
    const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
    await once(wss, "listening");
    const frames: { type: string; channel?: string; connection: number }[] = [];
    let connections = 0;
    wss.on("connection", (ws) => {
      const connection = ++connections;
      ws.on("message", (raw) => {
        const frame = JSON.parse(raw.toString());
        frames.push({ ...frame, connection });
        if (frame.type === "ping") return ws.send('{"type":"pong"}');
        if (frame.type !== "subscribe" || ignore(frame, connection)) return;
        ws.send(JSON.stringify({ type: "subscribed", channel: frame.channel, id: frame.id }));
        ws.send(JSON.stringify({ type: "data", channel: frame.channel, data: connection }));
      });
    });
    const url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`;
    return {
      url,
      frames,
      dropAll: () => {
        for (const ws of wss.clients) ws.terminate();
      },
      close: async () => {
        for (const ws of wss.clients) ws.terminate();
        await new Promise((resolve) => wss.close(resolve));
      },
    };
  }

  it("asks again, after a backoff, for a resubscribe that timed out, instead of dropping it", async () => {
    // The second connection ignores its first subscribe (a storm), answers the next.
    let ignored = 0;
    const server = await busyServer((_frame, connection) => connection === 2 && ignored++ === 0);
    try {
      const client = connect<App>(server.url, { timeout: 300 });
      const errors: string[] = [];
      client.onError((error) => errors.push(error.code));
      const data: unknown[] = [];
      const feed = client.subscribe("chat", (value) => data.push(value));
      await feed.ready;
      await until(() => data.length === 1);
      server.dropAll();
      await until(() => data.length === 2, 5000);
      expect(data).toEqual([1, 2]);
      expect(errors).toContain("TIMEOUT");
      const subscribes = server.frames.filter((frame) => frame.type === "subscribe");
      expect(subscribes.map((frame) => frame.connection)).toEqual([1, 2, 2]);
    } finally {
      await server.close();
    }
  });

  it("rejects a first subscribe that timed out, and unsubscribes it in case the server took it late", async () => {
    const server = await busyServer(() => true);
    try {
      const client = connect<App>(server.url, { timeout: 200 });
      await expect(client.subscribe("chat", () => {}).ready).rejects.toMatchObject({
        code: "TIMEOUT",
      });
      await until(() => server.frames.some((frame) => frame.type === "unsubscribe"));
      expect(server.frames.map((frame) => [frame.type, frame.channel])).toEqual([
        ["subscribe", "chat"],
        ["unsubscribe", "chat"],
      ]);
    } finally {
      await server.close();
    }
  });
});

describe("the client against servers that are not SocketAPI for TypeScript", () => {
  let wss: WebSocketServer;
  let url: string;
  const connections: WebSocket[] = [];
  const accepted: { path: string; at: number }[] = [];
  /** The waits between the upgrades of one path, in ms. */
  const gaps = (path: string) => {
    const times = accepted.filter((a) => a.path === path).map((a) => a.at);
    return times.slice(1).map((at, i) => at - (times[i] as number));
  };

  beforeAll(async () => {
    wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
    await once(wss, "listening");
    url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`;
    // Like SocketAPI 0.2 in Python: no ids in answers, no codes on errors; answers in order.
    wss.on("connection", (ws, request) => {
      connections.push(ws);
      accepted.push({ path: request.url ?? "", at: performance.now() });
      // A crash loop: accepted, then closed at once.
      if (request.url?.includes("crashing")) return ws.close(1011, "crashed");
      // Healthy for a while, then closed.
      if (request.url?.includes("brief")) return void setTimeout(() => ws.close(1001), 150);
      if (request.url?.includes("silent")) return; // a dead peer: never answers, not even pings
      ws.on("message", (raw) => {
        const frame = JSON.parse(raw.toString());
        if (frame.type === "ping") return ws.send('{"type":"pong"}');
        if (frame.channel === "add_numbers") {
          const { a, b } = frame.data;
          return ws.send(
            JSON.stringify({
              type: "action",
              channel: "add_numbers",
              status: "completed",
              data: a + b,
            }),
          );
        }
        if (frame.type === "subscribe")
          return ws.send(JSON.stringify({ type: "subscribed", channel: frame.channel }));
        ws.send(JSON.stringify({ type: "error", message: `Action '${frame.channel}' not found.` }));
      });
    });
  });
  afterAll(async () => {
    for (const ws of connections) ws.terminate();
    await new Promise((resolve) => wss.close(resolve));
  });

  it("matches answers without ids in request order (SocketAPI 0.2)", async () => {
    const client = connect<App>(url);
    const [first, second, missing, third] = await Promise.allSettled([
      client.action("add_numbers", { a: 1, b: 2 }),
      client.action("add_numbers", { a: 10, b: 20 }),
      client.action("nothing"),
      client.action("add_numbers", { a: 100, b: 200 }),
    ]);
    expect(first).toEqual({ status: "fulfilled", value: 3 });
    expect(second).toEqual({ status: "fulfilled", value: 30 });
    expect(missing).toMatchObject({
      status: "rejected",
      reason: { code: "ERROR", message: "Action 'nothing' not found." },
    });
    expect(third).toEqual({ status: "fulfilled", value: 300 });
    await expect(client.subscribe("chat", () => {}).ready).resolves.toBeUndefined();
  });

  it("says reconnecting, and when the next attempt starts, between attempts; closed only when it gives up", async () => {
    const client = connect<App>(`${url}crashing`, {
      reconnect: { initialDelay: 200, maxDelay: 200, maxAttempts: 2 },
    });
    const seen: [string, number | undefined][] = [];
    client.onStatus((status) => seen.push([status, client.nextAttempt]));
    await until(() => client.status === "closed", 5000);
    expect(seen.map(([status]) => status)).toEqual([
      "open",
      "reconnecting",
      "connecting",
      "open",
      "reconnecting",
      "connecting",
      "open",
      "closed",
    ]);
    const now = Date.now();
    for (const [status, next] of seen) {
      if (status === "reconnecting") {
        expect(next).toBeGreaterThan(now - 2000);
      } else expect(next).toBeUndefined();
    }
  });

  it("retries a server that accepts and closes at once ever more slowly, not at full speed", async () => {
    // Before: every open started the waits again, about 40 upgrades a second here.
    // A path of its own: the upgrades of other tests' clients are not counted.
    const client = connect<App>(`${url}crashing-loop`, {
      reconnect: { initialDelay: 40, maxDelay: 320 },
    });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    client.close();
    const waits = gaps("/crashing-loop");
    // 20-40, 40-80, 80-160, 160-320, then 160-320 ms each: even with every wait the
    // shortest the jitter allows, 300 ms for the first four and 160 ms for each of the
    // rest, at most 4 + 10 waits fit in 2 s (at full speed: about 80).
    expect(waits.length).toBeGreaterThanOrEqual(4);
    expect(waits.length).toBeLessThanOrEqual(14);
    expect(waits.slice(-3).every((wait) => wait >= 150)).toBe(true);
  });

  it("starts the waits again once a connection stayed open for resetAfter", async () => {
    connect<App>(`${url}brief`, {
      reconnect: { initialDelay: 40, maxDelay: 2000, resetAfter: 100 },
      heartbeat: false,
    });
    await until(() => gaps("/brief").length >= 5, 5000);
    // Each connection lived 150 ms, past resetAfter: every wait is the first one again
    // (20-40 ms). Without the reset the fifth would be 320-640 ms, after the 150.
    for (const wait of gaps("/brief")) expect(wait).toBeLessThan(400);
  });

  it("spreads the reconnects of 100 clients dropped at once over the first wait", async () => {
    const many = Array.from({ length: 100 }, () =>
      connect<App>(`${url}storm`, {
        reconnect: { initialDelay: 400, maxDelay: 400, resetAfter: 50 },
        heartbeat: false,
      }),
    );
    await Promise.all(many.map((client) => client.opened()));
    // The wait each client chose when it saw the drop: what the client decides, whatever
    // the machine's load does to when its timers then fire (when the server's accepts of
    // all clients in this process were timed instead, a busy machine bunched them: 31 in
    // 20 ms once in CI).
    const waits: number[] = [];
    for (const client of many) {
      client.onStatus((status) => {
        if (status === "reconnecting" && client.nextAttempt !== undefined) {
          waits.push(client.nextAttempt - Date.now());
        }
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (const ws of connections) if (ws.readyState === 1) ws.terminate();
    // Every one comes back.
    await until(() => accepted.filter((a) => a.path === "/storm").length >= 200, 5000);
    expect(waits).toHaveLength(100);
    // Each wait is between half and all of 400 ms: spread over about 200 ms, not at once.
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(190);
    expect(Math.max(...waits)).toBeLessThanOrEqual(400);
    expect(Math.max(...waits) - Math.min(...waits)).toBeGreaterThan(120);
    // No 20 ms holds more than a quarter of them.
    for (let from = 200; from < 400; from += 20) {
      expect(waits.filter((wait) => wait >= from && wait < from + 20).length).toBeLessThan(25);
    }
  });

  it("drops a connection whose peer stopped answering, by its heartbeat, and reconnects", async () => {
    const before = connections.length;
    const client = connect<App>(`${url}silent`, { heartbeat: { interval: 40, timeout: 40 } });
    const statuses: ConnectionStatus[] = [];
    client.onStatus((status) => statuses.push(status));
    await until(() => statuses.includes("reconnecting") && connections.length >= before + 2, 3000);
    expect(statuses.slice(0, 3)).toEqual(["open", "reconnecting", "connecting"]);
  });
});
