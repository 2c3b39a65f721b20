// The Node adapter over real sockets: serve, attach, refusal, limits, shutdown.
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import * as v from "valibot";
import { afterEach, describe, expect, it, vi } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { attach, broadcastHandler, type NodeServer, serve } from "../adapters/node.ts";
import seed from "../examples/main.ts";
import { hubOf, isLoopbackAddress } from "../src/adapter.ts";
import { SocketAPI } from "../src/index.ts";
import { secretMatches } from "../src/serve/broadcast-endpoint.ts";
import { openClient, WsClient } from "./helpers/ws-client.ts";

const servers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(app: Parameters<typeof serve>[0], options: Parameters<typeof serve>[1] = {}) {
  const server = await serve(app, { port: 0, ...options });
  servers.push(server);
  return server;
}

async function until(condition: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("serve", () => {
  it("listens with a backlog of 4096 (Node's own is 511), or the one given", async () => {
    // `ss` shows a listening socket's backlog as its Send-Q.
    const backlogOf = (port: number) =>
      Number(
        execFileSync("ss", ["-ltnH", `sport = :${port}`], { encoding: "utf8" })
          .trim()
          .split(/\s+/)[2],
      );
    const wide = await start(new SocketAPI());
    const narrow = await start(new SocketAPI(), { backlog: 100 });
    const somaxconn = Number(readFileSync("/proc/sys/net/core/somaxconn", "utf8"));
    expect(backlogOf(wide.port)).toBe(Math.min(4096, somaxconn));
    expect(backlogOf(narrow.port)).toBe(100);
  });

  it("serves the seed example: an action, and a broadcast to every chat subscriber", async () => {
    const server = await start(seed);
    const [a, b, c] = await Promise.all([
      openClient(server.url),
      openClient(server.url),
      openClient(server.url),
    ]);
    expect(
      await a.request({ type: "action", channel: "add_numbers", data: { a: 5, b: 3 } }),
    ).toEqual({
      type: "action",
      channel: "add_numbers",
      status: "completed",
      data: 8,
    });
    for (const client of [b, c]) {
      expect(await client.request({ type: "subscribe", channel: "chat" })).toEqual({
        type: "subscribed",
        channel: "chat",
      });
    }
    a.send({ type: "action", channel: "send_message", data: { message: "Hello everyone!" } });
    expect(await a.next()).toEqual({
      type: "action",
      channel: "send_message",
      status: "completed",
    });
    for (const client of [b, c]) {
      expect(await client.next()).toEqual({
        type: "data",
        channel: "chat",
        data: { message: "Hello everyone!" },
      });
    }
    await a.expectNone();
  });

  it("listens on 127.0.0.1 by default and reports its URL", async () => {
    const server = await start(seed);
    expect(server.url).toBe(`ws://127.0.0.1:${server.port}/`);
    expect((server.server.address() as AddressInfo).address).toBe("127.0.0.1");
  });

  it("answers a plain HTTP request with 426 Upgrade Required", async () => {
    const server = await start(seed);
    const response = await fetch(`http://127.0.0.1:${server.port}/`);
    expect(response.status).toBe(426);
    expect(response.headers.get("upgrade")).toBe("websocket");
  });

  it("refuses a binary frame and invalid UTF-8 with an error frame, and stays open", async () => {
    const client = await openClient((await start(seed)).url);
    client.sendRaw(Buffer.from([1, 2, 3]), true);
    expect(await client.next()).toMatchObject({
      code: "INVALID_MESSAGE",
      message: "Binary frames are not supported.",
    });
    client.sendRaw(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), false);
    expect((await client.next()).code).toBe("INVALID_JSON");
    expect(
      await client.request({ type: "action", channel: "add_numbers", data: { a: 2, b: 2 } }),
    ).toMatchObject({
      data: 4,
    });
  });

  it("answers a frame over 1 MiB with MESSAGE_TOO_LARGE and keeps the connection", async () => {
    const client = await openClient((await start(seed)).url);
    client.sendRaw(
      JSON.stringify({ type: "action", channel: "add_numbers", data: "x".repeat(1024 * 1024) }),
    );
    expect(await client.next()).toEqual({
      type: "error",
      code: "MESSAGE_TOO_LARGE",
      message: "Message exceeds 1048576 bytes.",
    });
    expect(
      (await client.request({ type: "action", channel: "add_numbers", data: { a: 1, b: 1 } })).data,
    ).toBe(2);
  });

  it("closes with 1009 a frame over the hard limit it cannot read", async () => {
    const app = new SocketAPI({ maxMessageBytes: 1000 });
    const client = await openClient((await start(app)).url);
    client.sendRaw("x".repeat(5000));
    expect((await client.closed).code).toBe(1009);
  });

  it("refuses the upgrade with onConnect's status before accepting the socket", async () => {
    const app = new SocketAPI({
      onConnect: (request) => {
        const token = new URL(request.url).searchParams.get("token");
        if (!token) return new Response("Missing token", { status: 401 });
        if (token !== "good") return new Response("Bad token", { status: 403 });
        return { token };
      },
    }).action("token", (_, ctx) => ctx.connection.state.token);
    const server = await start(app);
    await expect(openClient(server.url)).rejects.toMatchObject({ status: 401 });
    await expect(openClient(`${server.url}?token=bad`)).rejects.toMatchObject({ status: 403 });
    expect(app.connections.size).toBe(0);
    const client = await openClient(`${server.url}?token=good`);
    expect((await client.request({ type: "action", channel: "token" })).data).toBe("good");
  });

  it("gives handlers the upgrade request's URL and headers", async () => {
    const app = new SocketAPI().action("request", (_, ctx) => ({
      url: ctx.request.url,
      custom: ctx.request.headers.get("x-custom"),
    }));
    const server = await start(app);
    const client = await openClient(`${server.url}room?x=1`, { "X-Custom": "yes" });
    expect((await client.request({ type: "action", channel: "request" })).data).toEqual({
      url: `http://127.0.0.1:${server.port}/room?x=1`,
      custom: "yes",
    });
  });

  it("cleans up a client that disconnects", async () => {
    const server = await start(seed);
    const client = await openClient(server.url);
    await client.request({ type: "subscribe", channel: "chat" });
    expect(hubOf(seed).subscriberCount("chat")).toBe(1);
    await client.close();
    await until(() => hubOf(seed).subscriberCount("chat") === 0 && seed.connections.size === 0);
  });

  it("serves only the configured path", async () => {
    const server = await start(seed, { path: "/ws" });
    expect(server.url).toBe(`ws://127.0.0.1:${server.port}/ws`);
    const client = await openClient(server.url);
    expect(
      (await client.request({ type: "action", channel: "add_numbers", data: { a: 1, b: 2 } })).data,
    ).toBe(3);
    const elsewhere = new WsClient(`ws://127.0.0.1:${server.port}/other`);
    await expect(elsewhere.opened).rejects.toMatchObject({ status: 404 });
  });
});

describe("graceful shutdown", () => {
  it("stops accepting, closes open sockets with 1001 and resolves when they are closed", async () => {
    const server: NodeServer = await serve(seed, { port: 0 });
    const clients = await Promise.all([openClient(server.url), openClient(server.url)]);
    await server.close();
    for (const client of clients) {
      expect(await client.closed).toEqual({ code: 1001, reason: "Server shutting down" });
    }
    expect(server.server.listening).toBe(false);
    await expect(openClient(server.url)).rejects.toThrow();
  });
});

describe("attach", () => {
  it("serves upgrades on a path of an existing http.Server that keeps its own routes", async () => {
    const http = createServer((_req, res) => res.end("hello from http"));
    const attachment = attach(seed, http, { path: "/ws" });
    http.listen(0, "127.0.0.1");
    await once(http, "listening");
    const { port } = http.address() as AddressInfo;
    servers.push({
      close: async () => {
        await attachment.close();
        await new Promise((resolve) => http.close(resolve));
      },
    });
    expect(await (await fetch(`http://127.0.0.1:${port}/anything`)).text()).toBe("hello from http");
    const client = await openClient(`ws://127.0.0.1:${port}/ws?x=1`);
    expect(
      (await client.request({ type: "action", channel: "add_numbers", data: { a: 4, b: 4 } })).data,
    ).toBe(8);
  });

  async function listen(http: ReturnType<typeof createServer>): Promise<number> {
    http.listen(0, "127.0.0.1");
    await once(http, "listening");
    servers.push({ close: () => new Promise<void>((done) => http.close(() => done())) });
    return (http.address() as AddressInfo).port;
  }

  it("answers 404 at once to an upgrade on another path when it is the server's only upgrade listener", async () => {
    const http = createServer();
    attach(seed, http, { path: "/ws" });
    const port = await listen(http);
    const started = Date.now();
    await expect(openClient(`ws://127.0.0.1:${port}/other`)).rejects.toMatchObject({
      status: 404,
    });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("leaves an upgrade on another path to another listener, and answers 404 if none takes it", async () => {
    const http = createServer();
    attach(seed, http, { path: "/ws", unclaimedTimeout: 200 });
    const other = new WebSocketServer({ noServer: true });
    http.on("upgrade", (req, socket, head) => {
      if (req.url === "/theirs") other.handleUpgrade(req, socket, head, (ws) => ws.send("theirs"));
    });
    const port = await listen(http);
    const theirs = await openClient(`ws://127.0.0.1:${port}/theirs`);
    await vi.waitFor(() => expect(theirs.frames).toEqual(["theirs"]));
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(theirs.ws.readyState).toBe(WebSocket.OPEN);
    theirs.ws.terminate();
    await expect(openClient(`ws://127.0.0.1:${port}/nobody`)).rejects.toMatchObject({
      status: 404,
    });
  });
});

describe("broadcast endpoint", () => {
  const post = (port: number, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`http://127.0.0.1:${port}/_broadcast`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });

  it("broadcasts from outside the process to the channel's subscribers", async () => {
    const server = await start(seed);
    const client = await openClient(server.url);
    await client.request({ type: "subscribe", channel: "chat" });
    const response = await post(server.port, { channel: "chat", data: { message: "from cron" } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, delivered: 1 });
    expect(await client.next()).toEqual({
      type: "data",
      channel: "chat",
      data: { message: "from cron" },
    });
  });

  it("broadcasts to a concrete parameterized name", async () => {
    const app = new SocketAPI().channel(
      "rooms/{room}",
      { params: v.object({ room: v.string(), text: v.optional(v.string(), "") }) },
      ({ text }) => text,
    );
    const server = await start(app);
    const in1 = await openClient(server.url);
    const in2 = await openClient(server.url);
    await in1.request({ type: "subscribe", channel: "rooms/1" });
    await in2.request({ type: "subscribe", channel: "rooms/2" });
    expect(
      await (await post(server.port, { channel: "rooms/1", data: { text: "one" } })).json(),
    ).toEqual({
      ok: true,
      delivered: 1,
    });
    expect(await in1.next()).toEqual({ type: "data", channel: "rooms/1", data: "one" });
    await in2.expectNone();
  });

  it("answers 404 for an unknown channel, 422 for invalid parameters, 400 for bad JSON, 405 for GET", async () => {
    const server = await start(seed);
    const unknown = await post(server.port, { channel: "nope" });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: "Channel 'nope' not found." });
    const invalid = await post(server.port, { channel: "chat", data: { message: 42 } });
    expect(invalid.status).toBe(422);
    expect(await invalid.json()).toMatchObject({
      error: "Invalid parameters for channel 'chat'",
      issues: [{ path: ["message"] }],
    });
    expect((await post(server.port, "{oops")).status).toBe(400);
    expect((await post(server.port, { data: {} })).status).toBe(400);
    const get = await fetch(`http://127.0.0.1:${server.port}/_broadcast`);
    expect(get.status).toBe(405);
  });

  it("refuses a caller it does not trust with 403, and accepts the bearer token", async () => {
    const server = await start(seed, { broadcast: { token: "s3cret", allowLoopback: false } });
    const client = await openClient(server.url);
    await client.request({ type: "subscribe", channel: "chat" });
    expect((await post(server.port, { channel: "chat" })).status).toBe(403);
    expect(
      (await post(server.port, { channel: "chat" }, { authorization: "Bearer wrong" })).status,
    ).toBe(403);
    const ok = await post(
      server.port,
      { channel: "chat", data: { message: "trusted" } },
      { authorization: "Bearer s3cret" },
    );
    expect(ok.status).toBe(200);
    expect((await client.next()).data).toEqual({ message: "trusted" });
    await client.expectNone();
  });

  it("refuses a caller from outside loopback with 403 unless it has the token", async () => {
    // A real request whose peer address is replaced by a public one: the server itself
    // listens on 127.0.0.1 only, as every test server does.
    const handler = broadcastHandler(seed, { token: "s3cret" });
    const http = createServer((req, res) => {
      Object.defineProperty(req.socket, "remoteAddress", { value: "203.0.113.7" });
      void handler(req, res);
    });
    http.listen(0, "127.0.0.1");
    await once(http, "listening");
    servers.push({ close: () => new Promise((done) => http.close(() => done())) });
    const { port } = http.address() as AddressInfo;
    const refused = await post(port, { channel: "chat", data: { message: "spoofed" } });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: "Forbidden." });
    const allowed = await post(port, { channel: "chat" }, { authorization: "Bearer s3cret" });
    expect(allowed.status).toBe(200);
  });

  it("decides who calls before it reads a byte of the body", async () => {
    const server = await start(seed, { broadcast: { token: "s3cret" } });
    // A body that never ends: only an answer given before reading it can come back.
    const endless = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"channel":"chat",'));
      },
    });
    const response = await fetch(`http://127.0.0.1:${server.port}/_broadcast`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer wrong" },
      body: endless,
      duplex: "half",
    } as RequestInit);
    expect(response.status).toBe(403);
  });

  it("compares the secret in time that depends only on what the caller sent", () => {
    expect(secretMatches("Bearer s3cret", "Bearer s3cret")).toBe(true);
    for (const given of ["", "Bearer s3cre", "Bearer s3cret!", "Bearer S3cret", "x".repeat(1000)]) {
      expect(secretMatches(given, "Bearer s3cret")).toBe(false);
    }
    expect(secretMatches("", "")).toBe(false);
  });

  it("knows which peer addresses are loopback", () => {
    for (const address of ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"]) {
      expect(isLoopbackAddress(address)).toBe(true);
    }
    for (const address of [
      "203.0.113.7",
      "10.0.0.1",
      "::ffff:192.168.1.2",
      "fe80::1",
      "",
      undefined,
    ]) {
      expect(isLoopbackAddress(address)).toBe(false);
    }
  });

  it("refuses a body over the frame limit with 413", async () => {
    const server = await start(new SocketAPI({ maxMessageBytes: 100 }).channel("c", () => 1));
    expect((await post(server.port, { channel: "c", data: { pad: "x".repeat(200) } })).status).toBe(
      413,
    );
  });

  it("can be turned off", async () => {
    const server = await start(seed, { broadcast: false });
    expect((await post(server.port, { channel: "chat" })).status).toBe(426);
  });
});

describe("a real WebSocket client", () => {
  it("is what these tests drive: a sanity check that ws reports the server's close code", async () => {
    const server = await start(
      new SocketAPI().action("bye", (_, ctx) => ctx.connection.close(4002, "done")),
    );
    const client = new WebSocket(server.url);
    await once(client, "open");
    client.send(JSON.stringify({ type: "action", channel: "bye" }));
    const [code] = await once(client, "close");
    expect(code).toBe(4002);
  });
});
