// Each protection, on Node: rate limits, queue and subscription limits, connection limits,
// origins, hostile keys and shapes, dead peers, graceful shutdown with work in flight.
import { once } from "node:events";
import * as v from "valibot";
import { afterEach, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { type NodeServer, serve } from "../adapters/node.ts";
import { admitUpgrade, hubOf } from "../src/adapter.ts";
import { createClient } from "../src/client/index.ts";
import { SocketAPI, subscribeParam } from "../src/index.ts";
import { MAX_ISSUE_MESSAGE, MAX_ISSUES } from "../src/protocol/issues.ts";
import { createTestClient } from "../src/testing.ts";
import { openClient, WsClient } from "./helpers/ws-client.ts";

const servers: NodeServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
});
async function start(app: Parameters<typeof serve>[0]): Promise<NodeServer> {
  const server = await serve(app, { port: 0 });
  servers.push(server);
  return server;
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("rate limit", () => {
  const app = () =>
    new SocketAPI({ rateLimit: { messagesPerSecond: 20, burst: 5, maxViolations: 3 } }).action(
      "one",
      () => 1,
    );

  it("answers RATE_LIMITED over the limit, naming it, and forgives a client that slows down", async () => {
    const client = await createTestClient(app());
    for (let i = 0; i < 6; i++) client.send({ type: "action", channel: "one", id: i });
    for (let i = 0; i < 5; i++)
      expect(await client.next()).toMatchObject({ status: "completed", id: i });
    expect(await client.next()).toEqual({
      type: "error",
      code: "RATE_LIMITED",
      message: "Rate limit exceeded: at most 20 messages per second.",
    });
    await sleep(120); // two tokens back
    expect(await client.request({ type: "action", channel: "one", id: "later" })).toMatchObject({
      data: 1,
    });
    expect(client.status).toBe("open");
  });

  it("closes a connection that keeps sending over the limit with 1008", async () => {
    const server = await start(app());
    const client = await openClient(server.url);
    for (let i = 0; i < 20; i++) client.send({ type: "action", channel: "one" });
    expect(await client.closed).toEqual({ code: 1008, reason: "Rate limit abuse" });
    // What was still queued when the abuse was seen goes with the connection.
    const answers = client.frames.map((frame) => JSON.parse(frame));
    expect(answers.filter((f) => f.status === "completed").length).toBeLessThanOrEqual(5);
    expect(answers.filter((f) => f.code === "RATE_LIMITED").length).toBeLessThanOrEqual(3);
  });

  it("can be turned off", async () => {
    const client = await createTestClient(
      new SocketAPI({ rateLimit: false }).action("one", () => 1),
    );
    const answers = await Promise.all(Array.from({ length: 200 }, () => client.action("one")));
    expect(answers.every((answer) => answer === 1)).toBe(true);
  });
});

describe("queue limit", () => {
  it("answers RATE_LIMITED when too many frames wait behind a slow one", async () => {
    const app = new SocketAPI({ maxQueuedMessages: 3, rateLimit: false }).action(
      "slow",
      async () => {
        await sleep(50);
        return "done";
      },
    );
    const client = await createTestClient(app);
    for (let i = 0; i < 6; i++) client.send({ type: "action", channel: "slow", id: i });
    const frames = [];
    for (let i = 0; i < 6; i++) frames.push(await client.next());
    expect(frames.filter((f) => f.status === "completed").map((f) => f.id)).toEqual([0, 1, 2, 3]);
    expect(frames.filter((f) => f.code === "RATE_LIMITED")).toEqual([
      { type: "error", code: "RATE_LIMITED", message: "Too many messages waiting: at most 3." },
      { type: "error", code: "RATE_LIMITED", message: "Too many messages waiting: at most 3." },
    ]);
  });
});

describe("subscriptions per connection", () => {
  it("answers TOO_MANY_SUBSCRIPTIONS past the limit, and confirms one already held", async () => {
    const app = new SocketAPI({ maxSubscriptions: 2 }).channel(
      "rooms/{room}",
      { params: v.object({ room: v.string() }) },
      () => 0,
    );
    const client = await createTestClient(app);
    for (const room of ["1", "2"])
      await client.request({ type: "subscribe", channel: `rooms/${room}` });
    expect(await client.request({ type: "subscribe", channel: "rooms/3", id: 3 })).toEqual({
      type: "error",
      code: "TOO_MANY_SUBSCRIPTIONS",
      message: "Too many subscriptions: at most 2 per connection.",
      channel: "rooms/3",
      id: 3,
    });
    expect(await client.request({ type: "subscribe", channel: "rooms/1" })).toMatchObject({
      type: "subscribed",
    });
    await client.request({ type: "unsubscribe", channel: "rooms/2" });
    expect(await client.request({ type: "subscribe", channel: "rooms/3" })).toMatchObject({
      type: "subscribed",
    });
  });
});

describe("connections per server", () => {
  it("refuses the upgrade with 503 past the limit, and accepts again once one leaves", async () => {
    const app = new SocketAPI({ maxConnections: 2 });
    const server = await start(app);
    const [a] = await Promise.all([openClient(server.url), openClient(server.url)]);
    await expect(openClient(server.url)).rejects.toMatchObject({ status: 503 });
    await a?.close();
    await vi.waitFor(() => expect(app.connections.size).toBe(1));
    await expect(openClient(server.url)).resolves.toBeInstanceOf(WsClient);
  });
});

describe("upgrades per second (connectRate)", () => {
  it("refuses past the burst with 503 and Retry-After: 1, before onConnect, and admits again as the bucket refills", async () => {
    const onConnect = vi.fn(() => ({}));
    const app = new SocketAPI({ connectRate: { perSecond: 2, burst: 3 }, onConnect });
    const server = await start(app);
    const opened = await Promise.all([1, 2, 3].map(() => openClient(server.url)));
    expect(opened).toHaveLength(3);
    await expect(openClient(server.url)).rejects.toMatchObject({ status: 503, retryAfter: "1" });
    expect(onConnect).toHaveBeenCalledTimes(3);
    // One token every 500 ms: one more after 600 ms, not two.
    await new Promise((resolve) => setTimeout(resolve, 600));
    await expect(openClient(server.url)).resolves.toBeInstanceOf(WsClient);
    await expect(openClient(server.url)).rejects.toMatchObject({ status: 503 });
  });

  it("lets 30 typed clients that come at once all in, each retrying after its backoff", async () => {
    const app = new SocketAPI({ connectRate: { perSecond: 50, burst: 5 } });
    const server = await start(app);
    const refusals: number[] = [];
    const clients = Array.from({ length: 30 }, () => {
      const client = createClient(server.url, {
        WebSocket,
        reconnect: { initialDelay: 100, maxDelay: 1000 },
      });
      client.onError((error) => {
        if (error.status !== undefined) refusals.push(error.status);
      });
      return client;
    });
    try {
      await vi.waitFor(
        () => {
          expect(app.connections.size).toBe(30);
          expect(clients.filter((client) => client.status === "open")).toHaveLength(30);
        },
        { timeout: 10_000 },
      );
      // The burst lets 5 in at once; the others were refused (503) at least once.
      expect(refusals.length).toBeGreaterThanOrEqual(25);
      expect(new Set(refusals)).toEqual(new Set([503]));
    } finally {
      for (const client of clients) client.close();
    }
  });

  it("is refused as an option without a positive rate", () => {
    expect(() => new SocketAPI({ connectRate: { perSecond: 0 } })).toThrow(
      "connectRate.perSecond must be above 0",
    );
  });
});

describe("origins", () => {
  it("refuses a browser from another origin with 403, before onConnect", async () => {
    const onConnect = vi.fn(() => ({}));
    const app = new SocketAPI({ allowedOrigins: ["https://app.example"], onConnect });
    const server = await start(app);
    await expect(openClient(server.url, { origin: "https://evil.example" })).rejects.toMatchObject({
      status: 403,
    });
    expect(onConnect).not.toHaveBeenCalled();
    await expect(openClient(server.url, { origin: "https://app.example" })).resolves.toBeInstanceOf(
      WsClient,
    );
    // Not a browser: no Origin header, nothing to hijack.
    await expect(openClient(server.url)).resolves.toBeInstanceOf(WsClient);
  });

  it("takes a function that decides", async () => {
    const app = new SocketAPI({ allowedOrigins: (origin) => origin.endsWith(".example.com") });
    const refused = await admitUpgrade(app, {
      url: "http://x/",
      headers: new Headers({ origin: "https://example.org" }),
    });
    const allowed = await admitUpgrade(app, {
      url: "http://x/",
      headers: new Headers({ origin: "https://a.example.com" }),
    });
    expect(refused.ok ? 200 : refused.response.status).toBe(403);
    expect(allowed.ok).toBe(true);
  });

  it("warns once, loudly, when onConnect reads cookies and no allowedOrigins is set", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    try {
      const byCookie = (request: { headers: Headers }) => ({
        session: request.headers.get("Cookie"),
      });
      const hijackable = new SocketAPI({ onConnect: byCookie });
      for (let i = 0; i < 3; i++) {
        await createTestClient(hijackable, { headers: { cookie: "session=abc" } });
      }
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]?.[0])).toMatch(/allowedOrigins is not set.*hijacking/);
      warn.mockClear();
      const guarded = new SocketAPI({
        onConnect: byCookie,
        allowedOrigins: ["https://app.example"],
      });
      await createTestClient(guarded, { headers: { cookie: "session=abc" } });
      const byToken = new SocketAPI({
        onConnect: (request) => ({ token: new URL(request.url).searchParams.get("token") }),
      });
      await createTestClient(byToken, { headers: { cookie: "session=abc" } });
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });
});

describe("hostile input", () => {
  it("changes nothing with __proto__, constructor and prototype keys anywhere in a frame", async () => {
    const seen: unknown[] = [];
    const app = new SocketAPI()
      .action("loose", { input: v.looseObject({ name: v.optional(v.string()) }) }, (input) => {
        seen.push(input);
        return Object.keys(input);
      })
      .action("record", { input: v.record(v.string(), v.unknown()) }, (input) => Object.keys(input))
      .channel(
        "rooms/{room}",
        {
          params: v.object({ room: v.string(), token: subscribeParam(v.optional(v.string(), "")) }),
          initialData: true,
        },
        (params) => Object.keys(params),
      );
    const client = await createTestClient(app);
    const hostile =
      '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}},"prototype":{"polluted":3}}';
    client.sendRaw(
      `{"type":"action","channel":"loose","data":${hostile},"__proto__":{"polluted":4}}`,
    );
    client.sendRaw(`{"type":"action","channel":"record","data":${hostile}}`);
    client.sendRaw(`{"type":"subscribe","channel":"rooms/__proto__","data":${hostile}}`);
    client.sendRaw(`{"type":"action","channel":"__proto__","data":${hostile}}`);
    const frames = [
      await client.next(),
      await client.next(),
      await client.next(),
      await client.next(),
      await client.next(),
    ];
    expect(frames[0]).toMatchObject({ status: "completed" });
    expect(frames[1]).toMatchObject({ status: "completed" });
    expect(frames[2]).toMatchObject({ type: "subscribed", channel: "rooms/__proto__" });
    expect(frames[3]).toMatchObject({ type: "data", data: ["room", "token"] });
    expect(frames[4]).toMatchObject({ code: "NOT_FOUND" });
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(seen[0])).toBe(Object.prototype);
    expect((seen[0] as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it("answers deeply nested JSON quickly and stays open", async () => {
    const onError = vi.fn();
    const app = new SocketAPI({ onError }).action("echo", { input: v.unknown() }, (input) => input);
    const server = await start(app);
    const client = await openClient(server.url);
    const depth = 400_000;
    client.sendRaw(
      `{"type":"action","channel":"echo","data":${"[".repeat(depth)}${"]".repeat(depth)}}`,
    );
    client.sendRaw(
      `{"type":"action","channel":"echo","data":${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}}`,
    );
    // Echoing such a value overflows JSON.stringify: an internal error, not a crash.
    expect(await client.next()).toMatchObject({ code: "INTERNAL_ERROR" });
    expect(await client.next()).toMatchObject({ code: "INTERNAL_ERROR" });
    expect(await client.request({ type: "action", channel: "echo", data: 1 })).toMatchObject({
      data: 1,
    });
    expect(onError.mock.calls.map(([error]) => (error as Error).name)).toEqual([
      "RangeError",
      "RangeError",
    ]);
  });

  it("keeps an error frame small however many issues a huge input has", async () => {
    const app = new SocketAPI().action(
      "numbers",
      { input: v.array(v.number()) },
      (input) => input.length,
    );
    const client = await createTestClient(app);
    const long = "x".repeat(500);
    const reply = await client.request({
      type: "action",
      channel: "numbers",
      data: Array(1000).fill(long),
    });
    expect(reply.code).toBe("INVALID_PARAMS");
    expect(reply.issues).toHaveLength(MAX_ISSUES);
    expect(reply.issues[0].message.length).toBeLessThanOrEqual(MAX_ISSUE_MESSAGE);
    expect(JSON.stringify(reply).length).toBeLessThan(10_000);
  });
});

describe("dead peers", () => {
  it("closes a connection that answers no pings, and cleans it up", async () => {
    const app = new SocketAPI({ idleTimeout: 0.2 }).channel("c", () => 0);
    const server = await start(app);
    // A client that never answers pings, as a peer that vanished without a FIN.
    const silent = new WebSocket(server.url, { autoPong: false });
    await once(silent, "open");
    silent.send(JSON.stringify({ type: "subscribe", channel: "c" }));
    await once(silent, "message");
    expect(hubOf(app).subscriberCount("c")).toBe(1);
    const [code] = await once(silent, "close");
    expect(code).toBe(1006); // terminated: no close frame
    await vi.waitFor(() => expect(app.connections.size).toBe(0));
    expect(hubOf(app).subscriberCount("c")).toBe(0);
  });

  it("keeps a connection that answers pings, however quiet", async () => {
    const app = new SocketAPI({ idleTimeout: 0.2 });
    const server = await start(app);
    const client = await openClient(server.url);
    await sleep(700);
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe("graceful shutdown", () => {
  const app = () =>
    new SocketAPI().action("slow", async () => {
      await sleep(200);
      return "finished";
    });

  it("lets an action in flight finish before closing with 1001", async () => {
    const server = await serve(app(), { port: 0 });
    const client = await openClient(server.url);
    client.send({ type: "action", channel: "slow", id: 1 });
    await sleep(20);
    await server.close({ timeout: 2000 });
    expect(await client.next()).toEqual({
      type: "action",
      channel: "slow",
      status: "completed",
      data: "finished",
      id: 1,
    });
    expect(await client.closed).toEqual({ code: 1001, reason: "Server shutting down" });
  });

  it("does not wait past its deadline", async () => {
    const server = await serve(app(), { port: 0 });
    const client = await openClient(server.url);
    client.send({ type: "action", channel: "slow" });
    await sleep(20);
    const started = Date.now();
    await server.close({ timeout: 50 });
    expect(Date.now() - started).toBeLessThan(190);
    expect((await client.closed).code).toBe(1001);
  });
});
