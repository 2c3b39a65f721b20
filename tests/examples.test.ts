// The examples get copied into real apps: what they do beside serving the seed example
// must be safe as written.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ServerProcess, startServer } from "./helpers/server-process.ts";
import { openClient } from "./helpers/ws-client.ts";

const tsx = [process.execPath, "--import", "tsx"];

describe("the Hono example's announce route", () => {
  let server: ServerProcess;
  let open: ServerProcess;
  beforeAll(async () => {
    [server, open] = await Promise.all([
      startServer([...tsx, "examples/hono-node.ts"], { env: { ANNOUNCE_TOKEN: "t0ken" } }),
      startServer([...tsx, "examples/hono-node.ts"], { env: { ANNOUNCE_TOKEN: "" } }),
    ]);
  }, 30_000);
  afterAll(async () => {
    await Promise.all([server?.stop(), open?.stop()]);
  });
  const announce = (port: number, body: string, headers: Record<string, string> = {}) =>
    fetch(`http://127.0.0.1:${port}/api/announce`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: "https://evil.example", ...headers },
      body,
    });

  it("broadcasts for a caller with the token, and for nobody else", async () => {
    const client = await openClient(server.url);
    await client.request({ type: "subscribe", channel: "chat" });
    const refused = await announce(server.port, '{"message":"spam"}');
    expect(refused.status).toBe(401);
    const ok = await announce(server.port, '{"message":"hello"}', {
      authorization: "Bearer t0ken",
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ delivered: 1 });
    expect(await client.next()).toEqual({
      type: "data",
      channel: "chat",
      data: { message: "hello" },
    });
    await client.expectNone();
    client.ws.terminate();
  });

  it("sends no CORS header, so no page of another site can read or preflight it", async () => {
    const preflight = await fetch(`http://127.0.0.1:${server.port}/api/announce`, {
      method: "OPTIONS",
      headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
    });
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
    const post = await announce(server.port, '{"message":"x"}', { authorization: "Bearer t0ken" });
    expect(post.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("answers a malformed body with 400, not 500", async () => {
    const auth = { authorization: "Bearer t0ken" };
    expect((await announce(server.port, "{oops", auth)).status).toBe(400);
    expect((await announce(server.port, '{"message":42}', auth)).status).toBe(400);
  });

  it("refuses everyone when no token is configured", async () => {
    const response = await announce(open.port, '{"message":"x"}', { authorization: "Bearer " });
    expect(response.status).toBe(403);
  });
});

describe("the assistant example", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer([
      process.execPath,
      "adapters/node-cli.js",
      "examples/assistant.ts",
      "--port",
      "{port}",
      "--host",
      "127.0.0.1",
    ]);
  }, 30_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("streams the reply word by word, then says how many words it sent", async () => {
    const client = await openClient(server.url);
    client.send({ type: "action", channel: "ask", data: { question: "why?", delay: 0 }, id: 1 });
    const words: string[] = [];
    for (;;) {
      const frame = await client.next();
      if (frame.type !== "chunk") {
        expect(frame).toEqual({
          type: "action",
          channel: "ask",
          status: "completed",
          data: { question: "why?", words: words.length },
          id: 1,
        });
        break;
      }
      expect(frame.id).toBe(1);
      words.push(frame.data as string);
    }
    expect(words.join("")).toMatch(/^SocketAPI declares actions .* to the client\.$/);
    client.ws.terminate();
  });

  it("stops when the client cancels, and says so in its log", async () => {
    const client = await openClient(server.url);
    client.send({
      type: "action",
      channel: "ask",
      data: { question: "long one", delay: 200 },
      id: 2,
    });
    expect(await client.next(3000)).toMatchObject({ type: "chunk", id: 2 });
    client.send({ type: "cancel", channel: "ask", id: 2 });
    expect(await client.next()).toEqual({
      type: "error",
      code: "CANCELLED",
      message: "Cancelled by the client.",
      channel: "ask",
      id: 2,
    });
    await client.expectNone(300);
    const deadline = Date.now() + 3000;
    while (!server.output().includes('"long one": cancelled after 1 of') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(server.output()).toContain('"long one": cancelled after 1 of');
    client.ws.terminate();
  });
});
