// The live dashboard (`admin`) over real sockets on Node: off by default, its token
// (query → cookie, Authorization, the socket's), its headers, its own socket, what its views
// count (exactly what clients sent), what an operator does (disconnect, broadcast; told to
// onAction), nothing running while nobody watches, bounded series; two instances over Redis;
// Bun and Deno.
import { createHash } from "node:crypto";
import * as v from "valibot";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { serve } from "../adapters/node.ts";
import { natsRelay } from "../relays/nats.ts";
import { redisRelay } from "../relays/redis.ts";
import type { AnyApp } from "../src/adapter.ts";
import { adminIfMade } from "../src/admin/admin-app.ts";
import type { AdminActionEvent } from "../src/admin/admin-options.ts";
import type { DashboardView } from "../src/admin/dashboard-view.ts";
import { createClient, type SocketAPIClient } from "../src/client/index.ts";

/** A client's `action` for an app it has no type of (the dashboard's). */
const untyped = (client: SocketAPIClient) =>
  client.action.bind(client) as unknown as (name: string, input: unknown) => Promise<unknown>;

import { SocketAPI } from "../src/index.ts";
import { type Broker, killAll, startNats, startRedis } from "./helpers/brokers.ts";
import { type ServerProcess, startServer } from "./helpers/server-process.ts";
import { WsClient } from "./helpers/ws-client.ts";

const TOKEN = "dashboard-token-0123456789";
const COOKIE = `socketapi_admin=${TOKEN}`;

function makeApp(options: ConstructorParameters<typeof SocketAPI>[0] = {}) {
  return new SocketAPI<{ user?: string }>({
    userId: (connection) => connection.state.user,
    onConnect: (request) => ({ user: new URL(request.url).searchParams.get("user") ?? undefined }),
    maxSubscriptions: 3,
    ...options,
  })
    .action("add", { input: v.object({ a: v.number(), b: v.number() }) }, ({ a, b }) => a + b)
    .action("slow", async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return "ok";
    })
    .channel("rooms/{room}", { params: v.object({ room: v.string() }) }, () => ({}))
    .channel("news", () => ({}))
    .channel("lobby", { presence: () => ({}), history: { size: 10, ttl: 60_000 } }, () => null);
}

type Served = Awaited<ReturnType<typeof serve>>;
const servers: Served[] = [];
const clients: WsClient[] = [];

async function start(app: AnyApp, admin: Parameters<typeof serve>[1] = {}): Promise<Served> {
  const server = await serve(app, { port: 0, admin: { token: TOKEN }, ...admin });
  servers.push(server);
  return server;
}

function client(server: { port: number }, path = "/", headers: Record<string, string> = {}) {
  const made = new WsClient(`ws://127.0.0.1:${server.port}${path}`, headers);
  clients.push(made);
  return made;
}

/** A dashboard socket: subscribed to its views. */
async function watcher(server: { port: number }): Promise<WsClient> {
  const page = client(server, "/admin", {
    cookie: COOKIE,
    origin: `http://127.0.0.1:${server.port}`,
  });
  await page.opened;
  page.send({ type: "subscribe", channel: "stats", id: 1 });
  await page.take((frame) => frame.type === "subscribed");
  return page;
}

/** The views a watcher gets until `done` says enough (at most `ms`). */
async function viewsUntil(
  page: WsClient,
  done: (views: DashboardView[]) => boolean,
  ms = 8000,
): Promise<DashboardView[]> {
  const views: DashboardView[] = [];
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const frame = await page.take(
      (f) => f.type === "data" && f.channel === "stats" && f.data,
      until - Date.now(),
    );
    views.push(frame.data as DashboardView);
    if (done(views)) return views;
  }
  throw new Error(`not within ${ms} ms: ${JSON.stringify(views.at(-1))}`);
}

/** What the views counted together (what the page adds up). */
function summed(views: DashboardView[]) {
  const sum = {
    received: 0,
    actions: new Map<string, number>(),
    errors: new Map<string, number>(),
    refusals: new Map<string, number>(),
  };
  for (const { counts } of views) {
    sum.received += counts.received;
    for (const [name, { count }] of Object.entries(counts.actions))
      sum.actions.set(name, (sum.actions.get(name) ?? 0) + count);
    for (const [code, n] of Object.entries(counts.errors))
      sum.errors.set(code, (sum.errors.get(code) ?? 0) + n);
    for (const [limit, n] of Object.entries(counts.refusals))
      sum.refusals.set(limit, (sum.refusals.get(limit) ?? 0) + n);
  }
  return sum;
}

afterEach(async () => {
  for (const made of clients.splice(0)) made.ws.terminate();
  for (const server of servers.splice(0)) await server.close({ timeout: 500 });
});

describe("the dashboard over HTTP", () => {
  it("is off by default: /admin is the app's socket path like any other (426 for a page)", async () => {
    const server = await serve(makeApp(), { port: 0 });
    servers.push(server);
    const response = await fetch(`http://127.0.0.1:${server.port}/admin`);
    expect(response.status).toBe(426);
  });

  it("refuses a token shorter than 16 characters when the server starts", async () => {
    await expect(serve(makeApp(), { port: 0, admin: { token: "short" } })).rejects.toThrow(
      "admin.token must be a string of at least 16 characters",
    );
  });

  it("answers 401 with a sign-in form without the token, and with a wrong one", async () => {
    const server = await start(makeApp());
    const base = `http://127.0.0.1:${server.port}`;
    for (const url of [`${base}/admin`, `${base}/admin?token=wrong-token-0123456789`]) {
      const response = await fetch(url, { redirect: "manual" });
      expect(response.status).toBe(401);
      expect(response.headers.get("cache-control")).toBe("no-store");
      expect(response.headers.get("set-cookie")).toBeNull();
      const page = await response.text();
      expect(page).toContain('<form method="get" action="/admin"');
      expect(page).not.toContain("<script");
    }
    const wrongCookie = await fetch(`${base}/admin`, {
      headers: { cookie: "socketapi_admin=nope" },
    });
    expect(wrongCookie.status).toBe(401);
    expect(await wrongCookie.text()).toContain("not the right one");
  });

  it("moves the token from the query into a cookie for its path, then serves the page by its hash-pinned script", async () => {
    const server = await start(makeApp());
    const base = `http://127.0.0.1:${server.port}`;
    const redirect = await fetch(`${base}/admin?token=${TOKEN}`, { redirect: "manual" });
    expect(redirect.status).toBe(303);
    expect(redirect.headers.get("location")).toBe("/admin");
    expect(redirect.headers.get("set-cookie")).toBe(
      `${COOKIE}; Path=/admin; HttpOnly; SameSite=Strict`,
    );
    const page = await fetch(`${base}/admin`, { headers: { cookie: COOKIE } });
    expect(page.status).toBe(200);
    expect(page.headers.get("cache-control")).toBe("no-store");
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    expect(page.headers.get("referrer-policy")).toBe("no-referrer");
    const html = await page.text();
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)?.[1] ?? "";
    const hash = createHash("sha256").update(script).digest("base64");
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain(`script-src 'sha256-${hash}';`);
    expect(csp).toContain(
      `connect-src ws://127.0.0.1:${server.port} wss://127.0.0.1:${server.port};`,
    );
    expect(csp).toContain("frame-ancestors 'none'");
    // Self-contained: nothing loaded from elsewhere.
    expect(html).not.toMatch(/\b(src|href)="https?:/);
    const bearer = await fetch(`${base}/admin`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(bearer.status).toBe(200);
    const post = await fetch(`${base}/admin`, { method: "POST", headers: { cookie: COOKIE } });
    expect(post.status).toBe(405);
  });

  it("is one page under 20 KB, its plots drawn by under 1 KB of its script (docs/dashboard.md)", async () => {
    const server = await start(makeApp());
    const html = await (
      await fetch(`http://127.0.0.1:${server.port}/admin`, { headers: { cookie: COOKIE } })
    ).text();
    expect(Buffer.byteLength(html)).toBeLessThan(20_000);
    const plot = /function plot\([\s\S]*?\n {2}}\n/.exec(html)?.[0] ?? "";
    expect(plot).toContain("polyline");
    expect(Buffer.byteLength(plot)).toBeLessThan(1024);
  });

  it("is never listed by /docs or the AsyncAPI document", async () => {
    const server = await start(makeApp(), { docs: true });
    const base = `http://127.0.0.1:${server.port}`;
    const document = await (await fetch(`${base}/asyncapi.json`)).text();
    const docs = await (await fetch(`${base}/docs`)).text();
    expect(document).not.toMatch(/admin|stats/);
    expect(docs).not.toContain("/admin");
  });
});

describe("the dashboard's socket", () => {
  it("is refused without the token (401) and from another origin (403)", async () => {
    const server = await start(makeApp());
    const none = client(server, "/admin");
    await expect(none.opened).rejects.toMatchObject({ status: 401 });
    const elsewhere = client(server, "/admin", { cookie: COOKIE, origin: "http://evil.example" });
    await expect(elsewhere.opened).rejects.toMatchObject({ status: 403 });
    const bearer = client(server, "/admin", { authorization: `Bearer ${TOKEN}` });
    await bearer.opened;
  });

  it("holds at most 16 pages open on an instance: the 17th is refused with 503", async () => {
    const server = await start(makeApp());
    const pages: WsClient[] = [];
    for (let i = 0; i < 16; i++) {
      const page = client(server, "/admin", { cookie: COOKIE });
      await page.opened;
      pages.push(page);
    }
    const seventeenth = client(server, "/admin", { cookie: COOKIE });
    await expect(seventeenth.opened).rejects.toMatchObject({ status: 503 });
    // The app's own connections are not the dashboard's.
    const app = client(server);
    await app.opened;
    (pages[0] as WsClient).ws.close();
    await (pages[0] as WsClient).closed;
    const again = client(server, "/admin", { cookie: COOKIE });
    await again.opened;
  });

  it("takes the typed client's token (its subprotocol) and answers its actions", async () => {
    const server = await start(makeApp());
    const typed = createClient(`ws://127.0.0.1:${server.port}/admin`, {
      token: TOKEN,
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
      reconnect: false,
    });
    try {
      expect(await untyped(typed)("connections", {})).toMatchObject({ total: 0, connections: [] });
    } finally {
      typed.close();
    }
    const wrong = createClient(`ws://127.0.0.1:${server.port}/admin`, {
      token: "not-the-token-0123456789",
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
      reconnect: false,
    });
    await expect(untyped(wrong)("connections", {})).rejects.toThrow();
    wrong.close();
  });

  it("counts exactly what clients sent: actions, errors by code, refusals by limit; p50/p99 per action", async () => {
    const server = await start(makeApp());
    const page = await watcher(server);
    // The first view comes within a second; what is counted starts with the watch.
    await viewsUntil(page, (views) => views.length >= 1);
    const ada = client(server, "/?user=ada");
    await ada.opened;
    for (let i = 0; i < 37; i++)
      ada.send({ type: "action", channel: "add", id: i + 1, data: { a: i, b: 1 } });
    for (let i = 0; i < 3; i++)
      ada.send({ type: "action", channel: "add", id: 100 + i, data: { a: "x" } });
    for (let i = 0; i < 5; i++) ada.send({ type: "action", channel: "slow", id: 200 + i });
    ada.send({ type: "action", channel: "nope", id: 300 });
    for (const room of ["a", "b", "c", "d"])
      ada.send({ type: "subscribe", channel: `rooms/${room}`, id: 400 + room.charCodeAt(0) });
    await ada.take((frame) => frame.id === 204, 3000);
    const views = await viewsUntil(page, (all) => {
      const sum = summed(all);
      return (
        sum.actions.get("add") === 40 &&
        sum.actions.get("slow") === 5 &&
        sum.refusals.get("subscriptions") === 1
      );
    });
    const sum = summed(views);
    expect(sum.received).toBe(37 + 3 + 5 + 1 + 4);
    expect(sum.errors.get("INVALID_PARAMS")).toBe(3);
    expect(sum.errors.get("NOT_FOUND")).toBe(1);
    const last = views.at(-1) as DashboardView;
    expect(last.latency.add?.count).toBe(40);
    expect(last.latency.slow?.count).toBe(5);
    // 20 ms of sleep: the quantile's bucket is within 19 % of it, or later.
    expect(last.latency.slow?.p50).toBeGreaterThanOrEqual(20 / 1.19);
    expect(last.latency.slow?.p99).toBeLessThan(1000);
    expect(last.latency.add?.p99).toBeLessThan(last.latency.slow?.p50 ?? 0);
    // Errors of an action count as its errors too.
    expect(views.reduce((n, view) => n + (view.counts.actions.add?.errors ?? 0), 0)).toBe(3);
    expect(last.connections).toBe(1);
    expect(last.subscriptions).toBe(3);
    expect(last.instances).toHaveLength(1);
    expect(last.instances[0]).toMatchObject({
      here: true,
      connections: 1,
      subscriptions: 3,
      relay: null,
    });
    expect(last.instances[0]?.runtime).toMatch(/^Node \d+/);
    expect(last.instances[0]?.memory?.rss).toBeGreaterThan(0);
  }, 20_000);

  it("keeps series bounded: 300 concrete channels of one template are one row", async () => {
    const app = makeApp({ maxSubscriptions: 1000 });
    const server = await start(app);
    const page = await watcher(server);
    const many = client(server);
    await many.opened;
    for (let i = 0; i < 300; i++)
      many.send({ type: "subscribe", channel: `rooms/${i}`, id: i + 1 });
    many.send({ type: "subscribe", channel: "news", id: 1000 });
    await many.take((frame) => frame.id === 1000, 3000);
    const views = await viewsUntil(page, (all) => all.at(-1)?.subscriptions === 301);
    expect(views.at(-1)?.templates).toEqual([
      ["rooms/{room}", 300, 300],
      ["news", 1, 1],
    ]);
    expect(JSON.stringify(views.at(-1))).not.toContain("rooms/17");
  }, 15_000);

  it("shows presence by template and the history kept in memory", async () => {
    const app = makeApp();
    const server = await start(app);
    const page = await watcher(server);
    const ada = client(server, "/?user=ada");
    const bob = client(server, "/?user=bob");
    const bob2 = client(server, "/?user=bob");
    for (const made of [ada, bob, bob2]) {
      await made.opened;
      made.send({ type: "subscribe", channel: "lobby", id: 1 });
      await made.take((frame) => frame.type === "subscribed");
    }
    for (let i = 0; i < 3; i++) await app.publish("lobby", { i });
    const views = await viewsUntil(page, (all) => {
      const last = all.at(-1);
      return last?.presence[0]?.[1] === 2 && typeof last.instances[0]?.history === "object";
    });
    const last = views.at(-1) as DashboardView;
    // Two members (bob's two tabs are one), three subscriptions.
    expect(last.presence).toEqual([["lobby", 2]]);
    expect(last.templates).toEqual([["lobby", 3, 1]]);
    const history = last.instances[0]?.history as { streams: number; bytes: number };
    expect(history.streams).toBe(1);
    expect(history.bytes).toBeGreaterThan(3 * 10);
  }, 15_000);

  it("runs nothing while nobody watches: no tally before the first page, none after the last left", async () => {
    const app = makeApp();
    const server = await start(app);
    const admin = () => adminIfMade(app);
    expect(admin()?.watch.sampling).toBe(false);
    const page = await watcher(server);
    expect(admin()?.watch.sampling).toBe(true);
    await viewsUntil(page, (views) => views.length >= 1);
    page.ws.close();
    await page.closed;
    const until = Date.now() + 3000;
    while (admin()?.watch.sampling && Date.now() < until)
      await new Promise((r) => setTimeout(r, 100));
    expect(admin()?.watch.sampling).toBe(false);
  }, 15_000);

  it("lets an operator list and disconnect a connection, a user, and broadcast a test message, each told to onAction", async () => {
    const events: AdminActionEvent[] = [];
    const app = makeApp();
    const server = await start(app, {
      admin: { token: TOKEN, onAction: (event) => events.push(event) },
    });
    const page = await watcher(server);
    const ada1 = client(server, "/?user=ada");
    const ada2 = client(server, "/?user=ada");
    const bob = client(server, "/?user=bob");
    await Promise.all([ada1.opened, ada2.opened, bob.opened]);
    bob.send({ type: "subscribe", channel: "rooms/7", id: 1 });
    await bob.take((frame) => frame.type === "subscribed");
    page.send({ type: "action", channel: "connections", id: 10, data: { user: "ada" } });
    const listed = await page.take((frame) => frame.id === 10);
    expect(listed.data.total).toBe(2);
    expect(listed.data.connections.map((c: { user: string }) => c.user)).toEqual(["ada", "ada"]);

    page.send({
      type: "action",
      channel: "broadcast",
      id: 11,
      data: { channel: "rooms/7", data: { text: "test" } },
    });
    expect((await page.take((frame) => frame.id === 11)).data).toEqual({
      reached: 1,
      relayed: false,
    });
    expect(await bob.take((frame) => frame.type === "data")).toMatchObject({
      channel: "rooms/7",
      data: { text: "test" },
    });
    page.send({
      type: "action",
      channel: "broadcast",
      id: 12,
      data: { channel: "nowhere/1", data: 1 },
    });
    expect(await page.take((frame) => frame.id === 12)).toMatchObject({
      type: "error",
      code: "NOT_FOUND",
    });

    page.send({
      type: "action",
      channel: "disconnect",
      id: 13,
      data: { connection: listed.data.connections[0].id },
    });
    expect((await page.take((frame) => frame.id === 13)).data).toEqual({ closed: 1 });
    expect(await ada1.closed).toEqual({ code: 1008, reason: "Disconnected by an operator" });
    page.send({ type: "action", channel: "disconnect", id: 14, data: { user: "ada" } });
    expect((await page.take((frame) => frame.id === 14)).data).toEqual({ closed: 1 });
    expect((await ada2.closed).code).toBe(1008);
    expect(bob.ws.readyState).toBe(bob.ws.OPEN);
    expect(events.map(({ action, target, result }) => [action, target, result])).toEqual([
      ["broadcast", "rooms/7", 1],
      ["disconnect-connection", listed.data.connections[0].id, 1],
      ["disconnect-user", "ada", 1],
    ]);
    expect(events.every((event) => typeof event.by === "string" && event.at > 0)).toBe(true);
  }, 15_000);

  it("does not count its own socket's frames as the app's", async () => {
    const server = await start(makeApp());
    const page = await watcher(server);
    for (let i = 0; i < 5; i++)
      page.send({ type: "action", channel: "connections", id: 50 + i, data: {} });
    const views = await viewsUntil(page, (all) => all.length >= 3);
    expect(summed(views).received).toBe(0);
    expect(views.at(-1)?.connections).toBe(0);
  }, 15_000);
});

describe.each(["Redis", "NATS"] as const)("two instances over %s", (kind) => {
  let broker: Broker;
  beforeAll(async () => {
    broker = kind === "Redis" ? await startRedis() : await startNats();
  }, 30_000);
  afterAll(async () => {
    await killAll([broker]);
  });
  const relay = () => (kind === "Redis" ? redisRelay(broker.url) : natsRelay({ url: broker.url }));

  it("lists both, and counts what each instance's clients sent", async () => {
    const a = await start(makeApp({ relay: relay() }));
    const b = await start(makeApp({ relay: relay() }));
    const page = await watcher(a);
    await viewsUntil(page, (views) => (views.at(-1)?.instances.length ?? 0) === 2, 10_000);
    const onA = client(a);
    const onB = client(b);
    await Promise.all([onA.opened, onB.opened]);
    for (let i = 0; i < 7; i++)
      onA.send({ type: "action", channel: "add", id: i + 1, data: { a: 1, b: 1 } });
    for (let i = 0; i < 11; i++)
      onB.send({ type: "action", channel: "add", id: i + 1, data: { a: 1, b: 1 } });
    await onA.take((frame) => frame.id === 7);
    await onB.take((frame) => frame.id === 11);
    const views = await viewsUntil(page, (all) => summed(all).actions.get("add") === 18, 10_000);
    const last = views.at(-1) as DashboardView;
    expect(last.instances.map((i) => i.here).sort()).toEqual([false, true]);
    expect(last.connections).toBe(2);
    for (const instance of last.instances) {
      expect(instance.relay?.status).toBe("ok");
      expect(instance.connections).toBe(1);
    }
    // Nothing more is counted than was sent, whichever instance counted it.
    const later = await viewsUntil(page, (all) => all.length >= 2);
    expect(summed([...views, ...later]).actions.get("add")).toBe(18);
  }, 30_000);
});

describe.each([
  [
    "Workers (wrangler dev)",
    [
      "node_modules/.bin/wrangler",
      "dev",
      "--config",
      "tests/servers/wrangler.toml",
      "--ip",
      "127.0.0.1",
      "--port",
      "{port}",
      "--var",
      `ADMIN_TOKEN:${TOKEN}`,
    ],
    /^Cloudflare Workers$/,
  ],
  ["Bun", ["node_modules/.bin/bun", "tests/servers/bun.ts"], /^Bun \d/],
  [
    "Deno",
    [
      "node_modules/.bin/deno",
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "tests/servers/deno.ts",
    ],
    /^Deno \d/,
  ],
] as const)("on %s", (_name, command, runtime) => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer([...command], { env: { ADMIN_TOKEN: TOKEN }, timeout: 60_000 });
  }, 70_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("serves the page for the token, its socket, and counts what a client sent", async () => {
    const base = `http://127.0.0.1:${server.port}`;
    expect((await fetch(`${base}/admin`)).status).toBe(401);
    const page = await fetch(`${base}/admin`, { headers: { cookie: COOKIE } });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("script-src 'sha256-");
    const sender = client(server);
    await sender.opened;
    const watching = await watcher(server);
    // Counted from the view that lists its instance (on Workers, an object counts from the
    // first time the Worker asks it).
    await viewsUntil(watching, (all) => all.at(-1)?.connections === 1);
    for (let i = 0; i < 9; i++)
      sender.send({ type: "action", channel: "add_numbers", id: i + 1, data: { a: 1, b: 2 } });
    await sender.take((frame) => frame.id === 9);
    const views = await viewsUntil(watching, (all) => summed(all).actions.get("add_numbers") === 9);
    expect(views.at(-1)?.instances[0]?.runtime).toMatch(runtime);
    expect(views.at(-1)?.connections).toBe(1);
  }, 20_000);
});
