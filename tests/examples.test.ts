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
