// The fallback transport over real HTTP: Server-Sent Events for the server's frames, POST
// for the client's, on a Node server with `fallback: true`. The exact events and answers,
// the order of POSTs, the limits a socket is held to, the refusals, the close; the typed
// client falling back when the WebSocket cannot open and moving back when it can; and
// sessions across two instances over Redis with POSTs balanced round-robin.
// Bun and Deno: tests/conformance.test.ts; nginx and Chromium: tests/fallback-browser.test.ts.
import { connect } from "node:net";
import * as v from "valibot";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type NodeServer, serve } from "../adapters/node.ts";
import { redisRelay } from "../relays/redis.ts";
import { EventReader } from "../src/client/fallback-socket.ts";
import { createClient } from "../src/client/index.ts";
import { SocketAPI } from "../src/index.ts";
import { type Broker, startRedis } from "./helpers/brokers.ts";

/** An app with a refusal, a channel, and limits low enough to reach. */
function appOf(relay?: ReturnType<typeof redisRelay>) {
  return new SocketAPI({
    relay,
    maxMessageBytes: 4096,
    maxBufferedBytes: 64 * 1024,
    rateLimit: { messagesPerSecond: 50, burst: 50, maxViolations: 1000 },
    onConnect: (request) => {
      const refuse = new URL(request.url).searchParams.get("refuse");
      if (refuse) return new Response(`refused with ${refuse}`, { status: Number(refuse) });
      return { user: request.headers.get("authorization") ?? "anonymous" };
    },
  })
    .action(
      "add_numbers",
      { input: v.object({ a: v.number(), b: v.number() }) },
      ({ a, b }) => a + b,
    )
    .action("whoami", (_input, ctx) => ctx.connection.state.user)
    .channel(
      "chat",
      { params: v.object({ message: v.optional(v.string(), "") }) },
      ({ message }) => ({
        message,
      }),
    )
    .action("say", { input: v.object({ message: v.string() }) }, async (input, ctx) => {
      await ctx.channels.chat(input);
    })
    .action("flood", { input: v.number() }, async (count, ctx) => {
      for (let i = 0; i < count; i++) await ctx.channels.chat({ message: "x".repeat(2000) });
    });
}

/** Every stream a test opened: aborted after each test, passed or failed. */
const opened: AbortController[] = [];

/** A stream opened by GET: the session it names, and its events as they come. */
async function openStream(url: string, headers: Record<string, string> = {}) {
  const abort = new AbortController();
  opened.push(abort);
  const response = await fetch(url, {
    headers: { accept: "text/event-stream", ...headers },
    signal: abort.signal,
  });
  const events: { event: string; data: string }[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  if (response.ok && response.body) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new EventReader();
    void (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          events.push(...parser.take(value));
          wake?.();
        }
      } catch {}
      ended = true;
      wake?.();
    })();
  }
  let read = 0;
  const next = async (ms = 3000): Promise<{ event: string; data: string }> => {
    const deadline = Date.now() + ms;
    while (read >= events.length) {
      if (ended || Date.now() > deadline) throw new Error(`no event within ${ms} ms`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
    }
    return events[read++] as { event: string; data: string };
  };
  const frame = async () => JSON.parse((await next()).data) as Record<string, unknown>;
  let session = "";
  if (response.ok) {
    const opened = await next();
    expect(opened.event).toBe("open");
    session = (JSON.parse(opened.data) as { session: string }).session;
  }
  let seq = 0;
  const post = (body: string, at = seq++) =>
    fetch(`${url}?session=${encodeURIComponent(session)}&seq=${at}`, {
      method: "POST",
      body,
      headers: { "content-type": "text/plain" },
    });
  return { response, session, next, frame, post, abort: () => abort.abort(), ended: () => ended };
}

/** A WebSocket class whose sockets never open, as behind a proxy that strips the upgrade. */
function blockedWebSocket(blocked: { now: boolean }) {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(blocked.now ? "ws://127.0.0.1:1/" : url, protocols);
    }
  };
}

const eventually = async (check: () => boolean, ms = 5000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("not within the time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe("one instance", () => {
  const app = appOf();
  let server: NodeServer;
  let http: string;

  beforeAll(async () => {
    server = await serve(app, { port: 0, fallback: true });
    http = `http://127.0.0.1:${server.port}/`;
  });
  afterAll(async () => {
    await server.close();
  });
  afterEach(async () => {
    for (const abort of opened.splice(0)) abort.abort();
    await eventually(() => app.connections.size === 0);
  });

  it("opens a session with an open event, then answers the frames a POST carries, in events", async () => {
    const stream = await openStream(http);
    expect(stream.response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(stream.response.headers.get("x-accel-buffering")).toBe("no");
    expect(stream.response.headers.get("cache-control")).toBe("no-store");
    expect(stream.session).toMatch(/^[\w-]{12}\.[\w-]{22}$/);
    const posted = await stream.post(
      '{"type":"action","channel":"add_numbers","data":{"a":5,"b":3}}',
    );
    expect(posted.status).toBe(204);
    expect(await stream.next()).toEqual({
      event: "message",
      data: '{"type":"action","channel":"add_numbers","status":"completed","data":8}',
    });
    stream.abort();
  });

  it("serves the frames of one POST in order, and POSTs in the order of their numbers, once each", async () => {
    const stream = await openStream(http);
    const frame = (a: number) =>
      JSON.stringify({ type: "action", channel: "add_numbers", data: { a, b: 0 }, id: a });
    // Number 1 before number 0: held until 0 comes. Then 1 again: seen already.
    expect((await stream.post(`${frame(3)}\n${frame(4)}`, 1)).status).toBe(204);
    expect((await stream.post(`${frame(1)}\n${frame(2)}`, 0)).status).toBe(204);
    expect((await stream.post(frame(99), 1)).status).toBe(204);
    expect((await stream.post(frame(5), 2)).status).toBe(204);
    const ids: unknown[] = [];
    for (let i = 0; i < 5; i++) ids.push((await stream.frame()).id);
    expect(ids).toEqual([1, 2, 3, 4, 5]);
    await expect(stream.next(300)).rejects.toThrow("no event");
    stream.abort();
  });

  it("holds a POST's frames to the socket's limits: size, rate", async () => {
    const stream = await openStream(http);
    const large = JSON.stringify({
      type: "action",
      channel: "add_numbers",
      data: "x".repeat(5000),
    });
    await stream.post(large);
    expect(await stream.frame()).toEqual({
      type: "error",
      code: "MESSAGE_TOO_LARGE",
      message: "Message exceeds 4096 bytes.",
    });
    // The bucket holds 50 frames; the one above took one of them.
    const ping = '{"type":"ping"}';
    await stream.post(Array.from({ length: 60 }, () => ping).join("\n"));
    const answers: unknown[] = [];
    for (let i = 0; i < 60; i++) answers.push((await stream.frame()).type);
    expect(answers.filter((type) => type === "pong")).toHaveLength(49);
    expect(answers.filter((type) => type === "error")).toHaveLength(11);
    stream.abort();
  });

  it("holds a POST's frames to the queue's bound as a socket's: past maxQueuedMessages, RATE_LIMITED", async () => {
    const slow = new SocketAPI({ rateLimit: false, maxQueuedMessages: 5 }).action(
      "wait",
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        return "done";
      },
    );
    const own = await serve(slow, { port: 0, fallback: true });
    try {
      const stream = await openStream(`http://127.0.0.1:${own.port}/`);
      const frames = Array.from({ length: 10 }, (_, id) =>
        JSON.stringify({ type: "action", channel: "wait", id }),
      );
      expect((await stream.post(frames.join("\n"))).status).toBe(204);
      const answers: Record<string, unknown>[] = [];
      for (let i = 0; i < 10; i++) answers.push(await stream.frame());
      const refused = answers.filter((frame) => frame.code === "RATE_LIMITED");
      // One running, five waiting, four refused in their turn (not read, so without their
      // ids, as on a socket).
      expect(refused).toHaveLength(4);
      expect(refused[0]).toEqual({
        type: "error",
        code: "RATE_LIMITED",
        message: "Too many messages waiting: at most 5.",
      });
      const completed = answers.filter((frame) => frame.status === "completed");
      expect(completed.map((frame) => frame.id)).toEqual([0, 1, 2, 3, 4, 5]);
      stream.abort();
    } finally {
      await own.close();
    }
  });

  it("answers 404 for a session nobody holds, 413 past the frame limit, 409 too far ahead", async () => {
    const unknown = await fetch(`${http}?session=nobody.here&seq=0`, {
      method: "POST",
      body: "{}",
    });
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toBe("Unknown session.\n");
    const stream = await openStream(http);
    const tooLarge = await stream.post("x".repeat(4 * 4096 + 1));
    expect(tooLarge.status).toBe(413);
    expect(await tooLarge.text()).toBe("Body exceeds 16384 bytes.\n");
    expect((await stream.post('{"type":"ping"}', 100)).status).toBe(409);
    stream.abort();
  });

  it("refuses the stream as it would the upgrade: onConnect's answer, with its status", async () => {
    const refused = await openStream(`${http}?refuse=401`);
    expect(refused.response.status).toBe(401);
    expect(await refused.response.text()).toBe("refused with 401");
    expect(app.connections.size).toBe(0);
  });

  it("reads the token from Authorization, which an EventSource could not send", async () => {
    const stream = await openStream(http, { authorization: "Bearer t-1" });
    await stream.post('{"type":"action","channel":"whoami","id":1}');
    expect((await stream.frame()).data).toBe("Bearer t-1");
    stream.abort();
  });

  it("ends the session when the client goes away", async () => {
    const stream = await openStream(http);
    await eventually(() => app.connections.size === 1);
    stream.abort();
    await eventually(() => app.connections.size === 0);
  });

  it("cuts off a client that stops reading its stream once maxBufferedBytes wait (1013)", async () => {
    // A raw client that reads the response head and then nothing more.
    const socket = connect(server.port, "127.0.0.1");
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.write("GET / HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
    const head = await new Promise<string>((resolve) =>
      socket.once("data", (d) => resolve(String(d))),
    );
    const session = /"session":"([^"]+)"/.exec(head)?.[1];
    expect(session).toBeDefined();
    socket.pause();
    const subscribe = await fetch(`${http}?session=${session}&seq=0`, {
      method: "POST",
      body: '{"type":"subscribe","channel":"chat"}',
    });
    expect(subscribe.status).toBe(204);
    const sender = await openStream(http);
    // 2 MiB of broadcasts for a reader that takes none: past 64 KiB, it is cut off.
    await sender.post('{"type":"action","channel":"flood","data":1000,"id":1}');
    await eventually(() => app.connections.size === 1, 10_000);
    sender.abort();
    socket.destroy();
  });

  it("closes its sessions with a close event (1001) when the server shuts down", async () => {
    const own = await serve(appOf(), { port: 0, fallback: true });
    const stream = await openStream(`http://127.0.0.1:${own.port}/`);
    await own.close();
    expect(await stream.next()).toEqual({
      event: "close",
      data: '{"code":1001,"reason":"Server shutting down"}',
    });
  });

  it("writes a keepalive comment every 5 seconds on a quiet stream", async () => {
    const response = await fetch(http, { headers: { accept: "text/event-stream" } });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const started = Date.now();
    let text = "";
    while (!text.includes(": keepalive")) {
      text += new TextDecoder().decode((await reader.read()).value);
    }
    const waited = Date.now() - started;
    // Not before the interval (and well within three of them, however loaded the machine).
    expect(waited).toBeGreaterThanOrEqual(4900);
    expect(waited).toBeLessThan(15_000);
    await reader.cancel();
  }, 20_000);

  it("is off unless asked for: a GET for events is answered 426, as any plain request", async () => {
    const plain = await serve(appOf(), { port: 0 });
    const response = await fetch(`http://127.0.0.1:${plain.port}/`, {
      headers: { accept: "text/event-stream" },
    });
    expect(response.status).toBe(426);
    await plain.close();
  });
});

describe("the typed client", () => {
  const app = appOf();
  let server: NodeServer;

  beforeAll(async () => {
    server = await serve(app, { port: 0, fallback: true });
  });
  afterAll(async () => {
    await server.close();
  });

  it("falls back to SSE and POST when the WebSocket cannot open, and moves back when it can", async () => {
    const blocked = { now: true };
    const client = createClient<ReturnType<typeof appOf>>(server.url, {
      WebSocket: blockedWebSocket(blocked),
      fallback: { retryWebSocket: 500 },
      token: "t-2",
    });
    try {
      expect(await client.action("add_numbers", { a: 2, b: 3 })).toBe(5);
      expect(await client.action("whoami")).toBe("Bearer t-2");
      const heard: string[] = [];
      const subscription = client.subscribe("chat", ({ message }) => heard.push(message));
      await subscription.ready;
      await client.action("say", { message: "over SSE" });
      await eventually(() => heard.length === 1);
      // The WebSocket gets through again: after retryWebSocket, the client is on it.
      blocked.now = false;
      await eventually(() => {
        const sockets = [...app.connections].map(
          (c) => (c as unknown as { socket: object }).socket.constructor.name,
        );
        return sockets.length === 1 && sockets[0] !== "SseSocket";
      }, 10_000);
      await eventually(() => client.status === "open");
      await client.action("say", { message: "over the WebSocket" });
      await eventually(() => heard.length === 2);
      expect(heard).toEqual(["over SSE", "over the WebSocket"]);
    } finally {
      client.close();
    }
  });

  it("stops on a refusal of the fallback's stream (401), as on a refused upgrade", async () => {
    const client = createClient<ReturnType<typeof appOf>>(`${server.url}?refuse=401`, {
      WebSocket: blockedWebSocket({ now: true }),
      fallback: true,
    });
    await expect(client.action("add_numbers", { a: 1, b: 1 })).rejects.toMatchObject({
      code: "REFUSED",
      status: 401,
    });
    expect(client.status).toBe("closed");
  });
});

describe("the client's fallback socket, against a recording fetch", () => {
  it("sends what waits in one POST, one POST at a time, at most 64 frames each, numbered", async () => {
    const posts: { seq: string | null; lines: number }[] = [];
    let answer: (() => void) | undefined;
    const events = new TransformStream<Uint8Array, Uint8Array>();
    const writer = events.writable.getWriter();
    const recording = (async (input: string | URL, init?: RequestInit) => {
      const url = new URL(String(input));
      if (init?.method !== "POST") {
        void writer.write(new TextEncoder().encode('event: open\ndata: {"session":"i.s"}\n\n'));
        return new Response(events.readable, { headers: { "content-type": "text/event-stream" } });
      }
      posts.push({ seq: url.searchParams.get("seq"), lines: String(init.body).split("\n").length });
      // The POST is answered when the test says so: the next waits for it.
      await new Promise<void>((resolve) => {
        answer = resolve;
      });
      return new Response(null, { status: 204 });
    }) as typeof fetch;
    const { FallbackSocket } = await import("../src/client/fallback-socket.ts");
    const socket = new FallbackSocket("ws://127.0.0.1:1/", { fetch: recording });
    await new Promise<void>((resolve) => {
      socket.onopen = () => resolve();
    });
    socket.send('{"type":"ping"}');
    for (let i = 0; i < 100; i++) socket.send('{"type":"ping"}');
    await eventually(() => posts.length === 1);
    expect(posts).toEqual([{ seq: "0", lines: 1 }]);
    answer?.();
    await eventually(() => posts.length === 2);
    answer?.();
    await eventually(() => posts.length === 3);
    answer?.();
    expect(posts).toEqual([
      { seq: "0", lines: 1 },
      { seq: "1", lines: 64 },
      { seq: "2", lines: 36 },
    ]);
    socket.close();
    await writer.close().catch(() => {});
  });
});

describe("two instances over Redis, POSTs balanced round-robin (no sticky sessions)", () => {
  let redis: Broker;
  const servers: NodeServer[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    for (let i = 0; i < 2; i++) {
      servers.push(await serve(appOf(redisRelay(redis.url)), { port: 0, fallback: true }));
    }
  }, 30_000);
  afterAll(async () => {
    for (const server of servers) await server.close();
    await redis?.kill();
  });

  it("carries each POST to the instance that holds the session, in order, and broadcasts across", async () => {
    // A balancer without affinity: each request goes to the next instance.
    let turn = 0;
    let sentOn = 0;
    const balanced = (async (input: string | URL, init?: RequestInit) => {
      const url = new URL(String(input));
      url.port = String(servers[turn++ % 2]?.port);
      const response = await fetch(url, init);
      // 202: the instance that took the POST sent it on to the one that holds the session.
      if (response.status === 202) sentOn += 1;
      return response;
    }) as typeof fetch;
    const options = { WebSocket: blockedWebSocket({ now: true }), fallback: { fetch: balanced } };
    const [one, two] = [
      createClient<ReturnType<typeof appOf>>(servers[0]?.url as string, options),
      createClient<ReturnType<typeof appOf>>(servers[0]?.url as string, options),
    ] as const;
    try {
      const heard: string[] = [];
      const subscription = two.subscribe("chat", ({ message }) => heard.push(message));
      await subscription.ready;
      // One client's sessions on one instance, its POSTs on both: answers all come, in order.
      const sums = await Promise.all(
        Array.from({ length: 20 }, (_, i) => one.action("add_numbers", { a: i, b: 1 })),
      );
      expect(sums).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      for (let i = 0; i < 10; i++) await one.action("say", { message: `m${i}` });
      await eventually(() => heard.length === 10);
      expect(heard).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
      expect(sentOn).toBeGreaterThan(5);
    } finally {
      one.close();
      two.close();
    }
  }, 30_000);
});
