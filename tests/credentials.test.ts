// Credentials off the URL, expiry and refresh, over real sockets (Node): what onConnect sees
// of each way a token comes, the refresh frame's answers and bad inputs, and the typed
// client that offers its token in Sec-WebSocket-Protocol, refreshes it ahead of the expiry,
// and reconnects with a fresh one after a 4001. The suite of every runtime
// (tests/conformance.test.ts) has the subprotocol, its refusals and the expiry too.
import * as v from "valibot";
import { afterEach, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { type NodeServer, serve } from "../adapters/node.ts";
import { createClient, SocketAPIClientError } from "../src/client/index.ts";
import { encodeToken } from "../src/client/token.ts";
import {
  type Credential,
  SocketAPI,
  type SocketAPIOptions,
  UnauthorizedError,
} from "../src/index.ts";
import { Expiry } from "../src/serve/expiry.ts";
import { openClient, type WsClient } from "./helpers/ws-client.ts";

const servers: NodeServer[] = [];
const sockets: WsClient[] = [];
const clients: { close(): void }[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const client of clients.splice(0)) client.close();
  for (const socket of sockets.splice(0)) socket.ws.terminate();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Tokens `NAME:TTL` mean the user NAME for TTL ms; what the app saw is in `seen`. */
function tokenApp(options: SocketAPIOptions<{ user: string }> = {}) {
  const seen = {
    connects: [] as { token: string | undefined; source: Credential["source"] }[],
    refreshes: [] as string[],
  };
  const app = new SocketAPI<{ user: string }>({
    onConnect: (_, credential) => {
      seen.connects.push({ token: credential.token, source: credential.source });
      const [user, ttl] = (credential.token ?? "").split(":");
      if (!user) return new Response("Missing token", { status: 401 });
      if (ttl) credential.expiresAt = Date.now() + Number(ttl);
      return { user };
    },
    onRefresh: (credential) => {
      seen.refreshes.push(credential.token);
      const [user, ttl] = credential.token.split(":");
      if (user === "revoked") throw new UnauthorizedError("Token revoked.");
      credential.expiresAt = new Date(Date.now() + Number(ttl));
      return { user: user as string };
    },
    userId: (connection) => connection.state.user,
    ...options,
  })
    .action("whoami", (_, ctx) => ({
      user: ctx.connection.state.user,
      protocol: ctx.request.headers.get("sec-websocket-protocol"),
      expiresAt: (ctx.connection as unknown as { expiresAt?: number }).expiresAt,
    }))
    .channel(
      "feed",
      { params: v.object({ n: v.optional(v.number(), 0) }), history: { size: 100, ttl: 60_000 } },
      ({ n }) => ({ n }),
    )
    .action("post", { input: v.object({ n: v.number() }) }, async ({ n }, ctx) => {
      await ctx.channels.feed({ n });
    });
  return { app, seen };
}

async function start(app: Parameters<typeof serve>[0]) {
  const server = await serve(app, { port: 0, host: "127.0.0.1" });
  servers.push(server);
  return server;
}

async function open(url: string, protocols?: string[], headers?: Record<string, string>) {
  const socket = await openClient(url, headers, protocols);
  sockets.push(socket);
  return socket;
}

const offer = (token: string) => ["socketapi", `socketapi.bearer.${encodeToken(token)}`];

describe("what onConnect sees of the credential", () => {
  it("reads the subprotocol first, then Authorization, then the URL's token", async () => {
    const { app, seen } = tokenApp();
    const server = await start(app);
    await open(server.url, offer("ada:é☃"));
    await open(server.url, undefined, { authorization: "Bearer grace" });
    await open(`${server.url}?token=lin`);
    expect(seen.connects).toEqual([
      { token: "ada:é☃", source: "protocol" },
      { token: "grace", source: "authorization" },
      { token: "lin", source: "query" },
    ]);
  });

  it("keeps no token for ctx.request, and answers with socketapi alone", async () => {
    const { app } = tokenApp();
    const server = await start(app);
    const socket = await open(server.url, [...offer("ada"), "app.v2"]);
    expect(socket.ws.protocol).toBe("socketapi");
    expect((await socket.request({ type: "action", channel: "whoami" })).data).toEqual({
      user: "ada",
      protocol: "socketapi",
    });
  });

  it("answers other subprotocols as before (ws: the first offered), and a client without any with none", async () => {
    const { app } = tokenApp();
    const server = await start(app);
    expect((await open(`${server.url}?token=ada`, ["graphql-ws", "other"])).ws.protocol).toBe(
      "graphql-ws",
    );
    expect((await open(`${server.url}?token=ada`)).ws.protocol).toBe("");
  });

  it("refuses a token also in Authorization: one credential per upgrade", async () => {
    const { app, seen } = tokenApp();
    const server = await start(app);
    const refused = new WebSocket(server.url, offer("ada"), {
      headers: { authorization: "Bearer ada" },
    });
    const status = await new Promise<number>((resolve) => {
      refused.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      refused.on("error", () => {});
    });
    expect(status).toBe(400);
    expect(seen.connects).toEqual([]);
  });
});

describe("expiry and refresh", () => {
  it("says the expiry only to a client that speaks socketapi, and closes at it with 4001", async () => {
    const { app } = tokenApp();
    const server = await start(app);
    const typed = await open(server.url, offer("ada:300"));
    const plain = await open(`${server.url}?token=ada:300`);
    const expiry = await typed.next();
    expect(expiry.type).toBe("expiry");
    expect(expiry.expiresIn).toBeGreaterThan(200);
    expect(expiry.expiresIn).toBeLessThanOrEqual(300);
    // The base protocol's client gets nothing new: its first frame is its own answer.
    plain.send({ type: "ping" });
    expect(await plain.next()).toEqual({ type: "pong" });
    expect(await typed.closed).toEqual({ code: 4001, reason: "Token expired" });
    expect(await plain.closed).toEqual({ code: 4001, reason: "Token expired" });
  });

  it("extends with a refresh (a Date works too), keeps the expiry after a refused one", async () => {
    const { app } = tokenApp();
    const server = await start(app);
    const socket = await open(server.url, offer("ada:400"));
    await socket.next(); // expiry
    const started = Date.now();
    socket.send({ type: "refresh", token: "ada:1000", id: "r1" });
    const refreshed = await socket.next();
    expect(refreshed).toMatchObject({ type: "refreshed", id: "r1" });
    expect(refreshed.expiresIn).toBeGreaterThan(900);
    socket.send({ type: "refresh", token: "revoked:5000", id: "r2" });
    expect(await socket.next()).toEqual({
      type: "error",
      code: "UNAUTHORIZED",
      message: "Token revoked.",
      id: "r2",
    });
    await sleep(500);
    expect(socket.ws.readyState).toBe(WebSocket.OPEN);
    expect(await socket.closed).toEqual({ code: 4001, reason: "Token expired" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it("refuses a refresh that changes the user, and keeps the state", async () => {
    const { app } = tokenApp();
    const server = await start(app);
    const socket = await open(server.url, offer("ada:60000"));
    await socket.next();
    socket.send({ type: "refresh", token: "mallory:60000", id: 1 });
    expect(await socket.next()).toEqual({
      type: "error",
      code: "FORBIDDEN",
      message: "A refresh cannot change the user.",
      id: 1,
    });
    expect((await socket.request({ type: "action", channel: "whoami" })).data).toMatchObject({
      user: "ada",
    });
  });

  it("refuses a refresh whose hook changed the user in place, and closes that connection", async () => {
    const { app } = tokenApp({
      onRefresh: (_credential, connection) => {
        connection.state.user = "mallory"; // changed in place, nothing returned
        return undefined;
      },
    });
    const server = await start(app);
    const socket = await open(server.url, offer("ada:60000"));
    await socket.next();
    socket.send({ type: "refresh", token: "ada:60000", id: 1 });
    expect(await socket.next()).toEqual({
      type: "error",
      code: "FORBIDDEN",
      message: "A refresh cannot change the user.",
      id: 1,
    });
    expect(await socket.closed).toEqual({ code: 1008, reason: "Refresh changed the user" });
  });

  it("answers malformed refreshes, and counts refreshes against the rate limit", async () => {
    const { app, seen } = tokenApp({
      rateLimit: { messagesPerSecond: 5, burst: 5, maxViolations: 1000 },
    });
    const server = await start(app);
    const socket = await open(server.url, offer("ada:60000"));
    await socket.next();
    socket.send({ type: "refresh", id: 1 });
    expect(await socket.next()).toEqual({
      type: "error",
      code: "INVALID_MESSAGE",
      message: "Refresh needs a token (a non-empty string).",
      id: 1,
    });
    socket.send({ type: "refresh", token: "x".repeat(8193), id: 2 });
    expect(await socket.next()).toEqual({
      type: "error",
      code: "INVALID_MESSAGE",
      message: "Token exceeds 8192 bytes.",
      id: 2,
    });
    // A flood: the first few are served, the rest refused without reaching onRefresh.
    for (let i = 0; i < 50; i++) socket.send({ type: "refresh", token: "ada:60000", id: i + 10 });
    const answers = [];
    for (let i = 0; i < 50; i++) answers.push(await socket.next());
    expect(answers.filter((answer) => answer.type === "refreshed").length).toBeLessThanOrEqual(3);
    expect(answers.filter((answer) => answer.code === "RATE_LIMITED").length).toBeGreaterThan(40);
    expect(seen.refreshes.length).toBeLessThanOrEqual(3);
  });

  it("answers a refresh as it always did to an app without onRefresh", async () => {
    const server = await start(new SocketAPI());
    const socket = await open(server.url);
    socket.send({ type: "refresh", token: "t", id: 1 });
    expect(await socket.next()).toEqual({
      type: "error",
      code: "INVALID_MESSAGE",
      message: "Channel is required.",
      id: 1,
    });
  });

  it("re-arms an expiry beyond a timer's reach (24.8 days), and closes at it (fake clock)", () => {
    vi.useFakeTimers();
    const closed: [number, string][] = [];
    const connection = {
      closed: false,
      close: (code: number, reason: string) => closed.push([code, reason]),
    };
    const expiry = new Expiry(connection, true);
    const thirtyDays = 30 * 24 * 3600_000;
    expiry.set(Date.now() + thirtyDays);
    vi.advanceTimersByTime(thirtyDays - 1);
    expect(closed).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(closed).toEqual([[4001, "Token expired"]]);
    // Moved by a refresh before it, it closes at the new time only.
    expiry.set(Date.now() + 1000);
    expiry.set(Date.now() + 5000);
    vi.advanceTimersByTime(4999);
    expect(closed).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(closed).toHaveLength(2);
  });
});

describe("the typed client's token", () => {
  it("offers the token, refreshes it ahead of the expiry, and never puts it in the URL", async () => {
    const { app, seen } = tokenApp();
    const server = await start(app);
    let issued = 0;
    const client = createClient<typeof app>(server.url, {
      WebSocket,
      token: async () => `ada:${++issued === 1 ? 500 : 60000}`,
    });
    clients.push(client);
    expect((await client.action("whoami")).user).toBe("ada");
    // Refreshed at 80% of 500 ms, before the server would close it.
    await sleep(700);
    expect(client.status).toBe("open");
    expect(seen.refreshes).toEqual(["ada:60000"]);
    expect(seen.connects).toEqual([{ token: "ada:500", source: "protocol" }]);
  });

  it("reconnects with a fresh token after its connection expired (4001), and recovers the channel", async () => {
    // No onRefresh: the connection runs out, the client gets a new token and comes back.
    const { app, seen } = tokenApp({ onRefresh: undefined });
    const server = await start(app);
    let issued = 0;
    const client = createClient<typeof app>(server.url, {
      WebSocket,
      token: () => `ada:${++issued === 1 ? 400 : 60000}`,
      reconnect: { initialDelay: 10, maxDelay: 50 },
    });
    clients.push(client);
    const received: number[] = [];
    const listener = client.subscribe("feed", ({ n }) => {
      if (n > 0) received.push(n);
    });
    await listener.ready;
    await client.action("post", { n: 1 });
    const statuses: string[] = [];
    client.onStatus((status) => statuses.push(status));
    // Another connection posts while this one is away.
    const other = await open(`${server.url}?token=grace`);
    await sleep(450);
    other.send({ type: "action", channel: "post", data: { n: 2 }, id: 1 });
    await other.next();
    for (let i = 0; i < 100 && !(statuses.includes("open") && received.includes(2)); i++) {
      await sleep(20);
    }
    expect(statuses).toContain("reconnecting");
    expect(client.status).toBe("open");
    expect(seen.connects.filter((c) => c.source === "protocol").map((c) => c.token)).toEqual([
      "ada:400",
      "ada:60000",
    ]);
    expect(received).toEqual([1, 2]);
  });

  it("takes a token callback that never answers as a failed attempt, and retries", async () => {
    const { app, seen } = tokenApp();
    const server = await start(app);
    let calls = 0;
    const client = createClient<typeof app>(server.url, {
      WebSocket,
      timeout: 100,
      reconnect: { initialDelay: 10, maxDelay: 20 },
      // The first call never settles; the second answers.
      token: () => (++calls === 1 ? new Promise<string>(() => {}) : "ada"),
    });
    clients.push(client);
    const errors: string[] = [];
    client.onError((error) => errors.push(`${error.code}: ${error.message}`));
    await client.opened();
    expect(await client.action("whoami")).toMatchObject({ user: "ada" });
    expect(errors).toEqual(["CONNECT_FAILED: The token callback did not answer within 100 ms."]);
    expect(seen.connects).toEqual([{ token: "ada", source: "protocol" }]);
  });

  it("refresh() sends a fresh token on demand, and rejects a refused one", async () => {
    const { app } = tokenApp();
    const server = await start(app);
    let next = "ada:60000";
    const client = createClient<typeof app>(server.url, { WebSocket, token: () => next });
    clients.push(client);
    await client.action("whoami");
    await client.refresh();
    next = "revoked:1";
    await expect(client.refresh()).rejects.toMatchObject({
      code: "UNAUTHORIZED",
      message: "Token revoked.",
    });
    await expect(client.refresh()).rejects.toBeInstanceOf(SocketAPIClientError);
    expect(client.status).toBe("open");
  });
});

describe("ending sessions from the server", () => {
  it("closes a user's connections or one connection, says how many, and checks code and reason", async () => {
    const { app } = tokenApp();
    const server = await start(app);
    const ada = [await open(`${server.url}?token=ada`), await open(`${server.url}?token=ada`)];
    const grace = await open(`${server.url}?token=grace`);
    expect(await app.disconnectUser("ada")).toBe(2);
    for (const socket of ada) {
      expect(await socket.closed).toEqual({ code: 1008, reason: "Disconnected by the server" });
    }
    expect(await app.disconnectUser("ada")).toBe(0);
    await expect(app.disconnectUser("grace", { code: 1006 })).rejects.toBeInstanceOf(RangeError);
    await expect(app.disconnectUser("grace", { reason: "é".repeat(62) })).rejects.toBeInstanceOf(
      RangeError,
    );
    const connection = [...app.connections].find((c) => c.state.user === "grace");
    expect(
      await app.disconnectConnection(connection?.id ?? "", { code: 4010, reason: "Bye" }),
    ).toBe(1);
    expect(await grace.closed).toEqual({ code: 4010, reason: "Bye" });
    expect(await app.disconnectConnection("no-such-id")).toBe(0);
  });

  it("takes a disconnect over POST /_broadcast, and refuses a malformed one with 400", async () => {
    const { app } = tokenApp();
    const server = await start(app);
    const socket = await open(`${server.url}?token=ada`);
    const post = async (body: unknown) => {
      const response = await fetch(`${server.url.replace("ws:", "http:")}_broadcast`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: await response.json() };
    };
    expect(await post({ disconnect: { user: "" } })).toMatchObject({ status: 400 });
    expect(await post({ disconnect: { user: "ada", connection: "x" } })).toMatchObject({
      status: 400,
    });
    expect(await post({ disconnect: { user: "ada" }, code: 999 })).toMatchObject({ status: 400 });
    expect(await post({ disconnect: { user: "ada" }, reason: 5 })).toMatchObject({ status: 400 });
    expect(await post({ disconnect: { user: "ada" }, code: 4003, reason: "Banned" })).toEqual({
      status: 200,
      body: { ok: true, disconnected: 1 },
    });
    expect(await socket.closed).toEqual({ code: 4003, reason: "Banned" });
  });
});
