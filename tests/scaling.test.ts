// Beyond one process: instances of an app sharing broadcasts over Redis and NATS (brokers
// these tests start, kill and start again on free ports), over node:cluster with
// `--workers`, and Node, Bun and Deno instances on one broker. Real processes, real
// sockets, real brokers.
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import {
  type Broker,
  ensureNginx,
  type Nginx,
  startNats,
  startNginx,
  startRedis,
} from "./helpers/brokers.ts";
import { freePort, root, type ServerProcess, startServer } from "./helpers/server-process.ts";
import { openClient, type WsClient } from "./helpers/ws-client.ts";

const CLI = ["node", "adapters/node-cli.js", "tests/servers/scaling-app.ts", "--port", "{port}"];
const BUN = `${root}/node_modules/.bin/bun`;
const DENO = `${root}/node_modules/.bin/deno`;

type Frame = Record<string, unknown>;

/** Instances and clients started by a test, stopped after it. */
const running: ServerProcess[] = [];
const clients: WsClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.ws.terminate();
  await Promise.all(running.splice(0).map((server) => server.stop()));
});

/** A Node instance served by the socketapi command, relayed over `broker`. */
async function nodeInstance(name: string, broker: Broker): Promise<ServerProcess> {
  const server = await startServer([...CLI, `--${broker.kind}`, broker.url], {
    env: { INSTANCE: name },
  });
  running.push(server);
  return server;
}

async function client(url: string): Promise<WsClient> {
  const opened = await openClient(url);
  clients.push(opened);
  return opened;
}

let nextId = 0;

/** Calls an action and returns its answer's data; the broadcasts that come meanwhile stay unread. */
async function call(c: WsClient, action: string, data: unknown = {}): Promise<unknown> {
  const id = `r${nextId++}`;
  c.send({ type: "action", channel: action, data, id });
  const frame = (await c.take((f) => (f as Frame).id === id, 10_000)) as Frame;
  if (frame.type === "error") throw new Error(`${action}: ${frame.message}`);
  return frame.data;
}

async function subscribe(c: WsClient, channel: string): Promise<void> {
  expect(await c.request({ type: "subscribe", channel })).toEqual({ type: "subscribed", channel });
}

/** The next `count` broadcasts' data a client receives. */
async function broadcasts(c: WsClient, count: number, ms = 10_000): Promise<unknown[]> {
  const got: unknown[] = [];
  while (got.length < count) {
    const frame = (await c.next(ms)) as Frame;
    expect(frame.type).toBe("data");
    got.push(frame.data);
  }
  return got;
}

const sequence = (from: string, count: number) =>
  Array.from({ length: count }, (_, seq) => ({ seq, from }));

interface RelayReport {
  stats: { published: number; received: number; lost: number; disconnects: number } | null;
  errors: string[];
}

const relayReport = async (c: WsClient) => (await call(c, "relay_stats")) as RelayReport;

/** Retries `attempt` until it passes or `ms` go by. */
async function eventually(attempt: () => Promise<void>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await attempt();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

describe.each(["redis", "nats"] as const)("instances over %s", (kind) => {
  let broker: Broker;

  beforeAll(async () => {
    broker = kind === "redis" ? await startRedis() : await startNats();
  });
  afterAll(async () => {
    await broker?.kill();
  });

  it("a broadcast from any instance reaches every subscriber of every instance once, in order", async () => {
    const [a, b] = await Promise.all([nodeInstance("a", broker), nodeInstance("b", broker)]);
    const [onA, onB, actor] = await Promise.all([client(a.url), client(b.url), client(a.url)]);
    for (const c of [onA, onB, actor]) await subscribe(c, "news");

    // The acting client gets its broadcasts, then its answer.
    const id = "burst";
    actor.send({ type: "action", channel: "burst", data: { count: 200 }, id });
    expect(await broadcasts(actor, 200)).toEqual(sequence("a", 200));
    expect(await actor.next()).toMatchObject({ type: "action", status: "completed", id });
    expect(await broadcasts(onA, 200)).toEqual(sequence("a", 200));
    expect(await broadcasts(onB, 200)).toEqual(sequence("a", 200));

    // And from the other instance, the other way.
    const fromB = await client(b.url);
    await call(fromB, "burst", { count: 50 });
    for (const c of [onA, onB, actor]) expect(await broadcasts(c, 50)).toEqual(sequence("b", 50));
    // Exactly once: nothing more comes.
    for (const c of [onA, onB, actor]) await c.expectNone(300);
  });

  it("carries /_broadcast and app.channels of one instance to the subscribers of the others", async () => {
    const [a, b] = await Promise.all([nodeInstance("a", broker), nodeInstance("b", broker)]);
    const onA = await client(a.url);
    await subscribe(onA, "rooms/7");
    const response = await fetch(`http://127.0.0.1:${b.port}/_broadcast`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ channel: "rooms/7", data: { text: "from cron", from: "cron" } }),
    });
    expect(response.status).toBe(200);
    expect(await broadcasts(onA, 1)).toEqual([{ text: "from cron", from: "cron" }]);
    // A handler's broadcast on B, through its channel handle.
    await call(await client(b.url), "say", { room: "7", text: "hello" });
    expect(await broadcasts(onA, 1)).toEqual([{ text: "hello", from: "b" }]);
    // Another room's broadcast does not reach it.
    await call(await client(b.url), "say", { room: "8", text: "elsewhere" });
    await onA.expectNone(300);
  });

  it("sends an instance only the channels it has subscribers of (interest routing)", async () => {
    const [a, b, c] = (await Promise.all(
      ["a", "b", "c"].map((name) => nodeInstance(name, broker)),
    )) as [ServerProcess, ServerProcess, ServerProcess];
    const [fromA, onB, idleC] = await Promise.all([client(a.url), client(b.url), client(c.url)]);
    await subscribe(onB, "news");
    const onC = await client(c.url);
    await subscribe(onC, "rooms/1");

    await call(fromA, "burst", { count: 100 });
    expect(await broadcasts(onB, 100)).toEqual(sequence("a", 100));
    // C has no subscriber of news: the broker sent it none of those 100.
    const statsC = await relayReport(idleC);
    expect(statsC.stats?.received).toBe(0);
    expect((await relayReport(onB)).stats?.received).toBe(100);
    expect((await relayReport(fromA)).stats?.published).toBe(100);

    // The last subscriber leaves: the instance drops its interest.
    expect(await onB.request({ type: "unsubscribe", channel: "news" })).toMatchObject({
      type: "unsubscribed",
    });
    await call(fromA, "burst", { count: 20 });
    await eventually(async () => {
      expect((await relayReport(fromA)).stats?.published).toBe(120);
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await relayReport(onB)).stats?.received).toBe(100);
  });

  it("counts a channel's subscribers on every instance", async () => {
    const [a, b, c] = (await Promise.all(
      ["a", "b", "c"].map((name) => nodeInstance(name, broker)),
    )) as [ServerProcess, ServerProcess, ServerProcess];
    const onA = await Promise.all([client(a.url), client(a.url)]);
    const onB = await Promise.all([client(b.url), client(b.url), client(b.url)]);
    for (const each of [...onA, ...onB]) await subscribe(each, "rooms/7");
    const fromC = await client(c.url);
    const count = (channel: string, from = fromC) => call(from, "count_subscribers", { channel });
    expect(await count("rooms/7")).toBe(5);
    expect(await count("rooms/7", onA[0])).toBe(5);
    expect(await count("rooms/8")).toBe(0);
    await (onB[0] as WsClient).request({ type: "unsubscribe", channel: "rooms/7" });
    (onA[1] as WsClient).ws.close();
    await eventually(async () => {
      expect(await count("rooms/7")).toBe(3);
    });
  });

  it("ends a user's sessions on every instance, from a handler and from /_broadcast, and says how many", async () => {
    const [a, b, c] = (await Promise.all(
      ["a", "b", "c"].map((name) => nodeInstance(name, broker)),
    )) as [ServerProcess, ServerProcess, ServerProcess];
    const ada = await Promise.all([
      client(`${a.url}?user=ada`),
      client(`${b.url}?user=ada`),
      client(`${b.url}?user=ada`),
      client(`${c.url}?user=ada`),
    ]);
    const grace = await client(`${b.url}?user=grace`);
    const admin = await client(`${c.url}?user=admin`);
    expect(await call(admin, "disconnect_user", { user: "ada", code: 4003 })).toBe(4);
    for (const each of ada) expect(await each.closed).toEqual({ code: 4003, reason: "Banned" });
    expect(grace.ws.readyState).toBe(WebSocket.OPEN);
    expect(await call(admin, "disconnect_user", { user: "ada" })).toBe(0);
    // Over the HTTP endpoint of another instance (loopback, no token needed there).
    const response = await fetch(`http://127.0.0.1:${a.port}/_broadcast`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ disconnect: { user: "grace" } }),
    });
    expect(await response.json()).toEqual({ ok: true, disconnected: 1 });
    expect(await grace.closed).toEqual({ code: 1008, reason: "Disconnected by the server" });
  });

  it("keeps local broadcasts while the broker is down, reports the loss once, and recovers", async () => {
    const [a, b] = await Promise.all([nodeInstance("a", broker), nodeInstance("b", broker)]);
    const [onA, onB, fromA] = await Promise.all([client(a.url), client(b.url), client(a.url)]);
    for (const c of [onA, onB]) await subscribe(c, "news");
    await call(fromA, "burst", { count: 1 });
    for (const c of [onA, onB]) await broadcasts(c, 1);

    await broker.kill();
    // Local delivery goes on, and nothing waits for the broker.
    const started = Date.now();
    await call(fromA, "burst", { count: 30 });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await broadcasts(onA, 30)).toEqual(sequence("a", 30));
    // A subscription made during the outage is restored with the others.
    const lateOnB = await client(b.url);
    await subscribe(lateOnB, "rooms/3");
    await eventually(async () => {
      const report = await relayReport(fromA);
      expect(report.stats?.lost).toBeGreaterThanOrEqual(30);
      expect(report.errors.filter((e) => e.startsWith("relay:")).length).toBeGreaterThan(0);
    });
    const reportA = await relayReport(fromA);
    // Reported once for the outage, not once per lost broadcast.
    expect(reportA.errors.filter((e) => e.startsWith("relay:")).length).toBeLessThanOrEqual(2);
    expect(reportA.errors.join("\n")).toContain(kind === "redis" ? "Redis at" : "NATS at");
    await onB.expectNone(200);

    await broker.restart();
    // Broadcasts flow again, without a restart of the instances.
    await eventually(async () => {
      await call(fromA, "say", { room: "3", text: "back" });
      const frame = (await lateOnB.next(500)) as Frame;
      expect(frame).toMatchObject({ type: "data", channel: "rooms/3" });
    });
    await call(fromA, "burst", { count: 10 });
    const tail = (await broadcasts(onB, 10)) as { seq: number }[];
    expect(tail).toEqual(sequence("a", 10));
    expect((await relayReport(fromA)).stats?.disconnects).toBeGreaterThanOrEqual(1);
    // onA is not in rooms/3: it got the 10 only.
    expect(await broadcasts(onA, 10)).toEqual(sequence("a", 10));
  }, 60_000);

  it("holds a bounded amount for a broker that stops answering, loses the rest, and goes on when it answers", async () => {
    const [a, b] = await Promise.all([nodeInstance("a", broker), nodeInstance("b", broker)]);
    const [onA, onB, fromA] = await Promise.all([client(a.url), client(b.url), client(a.url)]);
    for (const c of [onA, onB]) await subscribe(c, "news");
    broker.pause();
    try {
      // 160 broadcasts of 100 KB: twice what a relay holds for the broker (8 MiB).
      const started = Date.now();
      await call(fromA, "burst", { count: 160, bytes: 100_000 });
      expect(Date.now() - started).toBeLessThan(5000);
      const got = (await broadcasts(onA, 160, 20_000)) as { seq: number }[];
      expect(got.map((frame) => frame.seq)).toEqual(sequence("a", 160).map((frame) => frame.seq));
      const report = await relayReport(fromA);
      expect(report.stats?.lost).toBeGreaterThanOrEqual(70);
      expect(report.stats?.published).toBeLessThanOrEqual(90);
      expect(report.errors.join("\n")).toContain("is not taking broadcasts as fast as they come");
    } finally {
      broker.resume();
    }
    // What was held reaches B, in order; then broadcasts flow again.
    const held = (await relayReport(fromA)).stats?.published ?? 0;
    const first = (await broadcasts(onB, held, 20_000)) as { seq: number }[];
    expect(first.map((frame) => frame.seq)).toEqual(Array.from({ length: held }, (_, seq) => seq));
    await call(fromA, "burst", { count: 5 });
    expect(await broadcasts(onB, 5)).toEqual(sequence("a", 5));
  }, 60_000);

  it("leaves the other instances unaffected when one dies", async () => {
    const [a, b, c] = (await Promise.all(
      ["a", "b", "c"].map((name) => nodeInstance(name, broker)),
    )) as [ServerProcess, ServerProcess, ServerProcess];
    const [onA, onB, onC] = await Promise.all([client(a.url), client(b.url), client(c.url)]);
    for (const x of [onA, onB, onC]) await subscribe(x, "news");
    b.child.kill("SIGKILL");
    await onB.closed;
    await call(await client(c.url), "burst", { count: 20 });
    for (const x of [onA, onC]) expect(await broadcasts(x, 20)).toEqual(sequence("c", 20));
  });

  it("fails at start-up, saying why, when the broker cannot be reached", async () => {
    const port = await freePort();
    const url = `${kind}://127.0.0.1:${port}`;
    const started = Date.now();
    const output = runToExit([...CLI.slice(0, 3), "--port", "0", `--${kind}`, url]);
    expect(output.status).toBe(1);
    expect(output.text).toContain(
      kind === "redis"
        ? `cannot connect to Redis at ${url}: connect ECONNREFUSED`
        : `cannot connect to NATS at ${url}: connection refused`,
    );
    expect(output.text).not.toContain("Unhandled");
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it("fails at start-up, saying why, with wrong credentials (and hides the password)", async () => {
    const guarded =
      kind === "redis"
        ? await startRedis({ password: "right" })
        : await startNats({ user: "app", password: "right" });
    try {
      const url = guarded.url.replace("right", "wrong");
      const output = runToExit([...CLI.slice(0, 3), "--port", "0", `--${kind}`, url]);
      expect(output.status).toBe(1);
      const redacted = url.replace("wrong", "***");
      expect(output.text).toContain(
        kind === "redis"
          ? `cannot connect to Redis at ${redacted}: WRONGPASS`
          : `cannot connect to NATS at ${redacted}: Authorization Violation`,
      );
      expect(output.text).not.toContain("wrong");
      expect(output.text).not.toContain("Unhandled");
    } finally {
      await guarded.kill();
    }
  });
});

/** Runs the command to its end; its status and everything it printed. */
function runToExit(command: string[]): { status: number | null; text: string } {
  const [file, ...args] = command as [string, ...string[]];
  try {
    const text = execFileSync(file, args, {
      cwd: root,
      encoding: "utf8",
      timeout: 30_000,
      stdio: "pipe",
    });
    return { status: 0, text };
  } catch (error) {
    const failed = error as { status: number | null; stdout?: string; stderr?: string };
    return { status: failed.status, text: `${failed.stdout ?? ""}${failed.stderr ?? ""}` };
  }
}

describe("Node, Bun and Deno instances on one broker", () => {
  let broker: Broker;
  beforeAll(async () => {
    broker = await startRedis();
  });
  afterAll(async () => {
    await broker?.kill();
  });

  it.each(["redis", "nats"] as const)(
    "share broadcasts over %s",
    async (kind) => {
      const shared = kind === "redis" ? broker : await startNats();
      try {
        const env = { RELAY_URL: shared.url };
        const servers = await Promise.all([
          startServer([...CLI, `--${kind}`, shared.url], { env: { INSTANCE: "node" } }),
          startServer([BUN, "tests/servers/scaling-bun.ts"], { env: { ...env, INSTANCE: "bun" } }),
          startServer(
            [
              DENO,
              "run",
              "--allow-net",
              "--allow-env",
              "--allow-read",
              "--allow-sys",
              "tests/servers/scaling-deno.ts",
            ],
            { env: { ...env, INSTANCE: "deno" }, timeout: 60_000 },
          ),
        ]);
        running.push(...servers);
        const subscribers = await Promise.all(servers.map((server) => client(server.url)));
        for (const c of subscribers) await subscribe(c, "news");
        for (const [index, name] of ["node", "bun", "deno"].entries()) {
          await call(await client((servers[index] as ServerProcess).url), "burst", { count: 20 });
          for (const c of subscribers) expect(await broadcasts(c, 20)).toEqual(sequence(name, 20));
        }
      } finally {
        if (shared !== broker) await shared.kill();
      }
    },
    90_000,
  );
});

describe("socketapi --workers N", () => {
  /** Connects until it has a client on each of `count` different workers. */
  async function onEachWorker(url: string, count: number): Promise<Map<number, WsClient>> {
    const byPid = new Map<number, WsClient>();
    for (let attempt = 0; byPid.size < count && attempt < 40; attempt++) {
      const c = await client(url);
      const { pid } = (await call(c, "whoami")) as { pid: number };
      if (!byPid.has(pid)) byPid.set(pid, c);
    }
    expect(byPid.size).toBe(count);
    return byPid;
  }

  it("serves one port from N processes and carries broadcasts between them through the primary", async () => {
    const server = await startServer([...CLI, "--workers", "2"]);
    running.push(server);
    expect(server.output()).toContain("(2 workers)");
    const workers = await onEachWorker(server.url, 2);
    const [first, second] = [...workers.values()] as [WsClient, WsClient];
    for (const c of [first, second]) await subscribe(c, "news");
    const { instance } = (await call(first, "whoami")) as { instance: string };
    await call(first, "burst", { count: 100 });
    for (const c of [first, second])
      expect(await broadcasts(c, 100)).toEqual(sequence(instance, 100));
    for (const c of [first, second]) await c.expectNone(200);
    // Counted across the workers, through the primary.
    expect(await call(first, "count_subscribers", { channel: "news" })).toBe(2);
  });

  it("closes each worker's connections at their credential's expiry (4001)", async () => {
    const server = await startServer([...CLI, "--workers", "2"]);
    running.push(server);
    const byPid = new Map<number, WsClient>();
    for (let attempt = 0; byPid.size < 2 && attempt < 40; attempt++) {
      const c = await client(`${server.url}?ttl=1500`);
      const { pid } = (await call(c, "whoami")) as { pid: number };
      if (!byPid.has(pid)) byPid.set(pid, c);
    }
    expect(byPid.size).toBe(2);
    for (const c of byPid.values()) {
      expect(await c.closed).toEqual({ code: 4001, reason: "Token expired" });
    }
  });

  it("ends a user's sessions in every worker", async () => {
    const server = await startServer([...CLI, "--workers", "2"]);
    running.push(server);
    const byPid = new Map<number, WsClient>();
    for (let attempt = 0; byPid.size < 2 && attempt < 40; attempt++) {
      const c = await client(`${server.url}?user=ada`);
      const { pid } = (await call(c, "whoami")) as { pid: number };
      if (!byPid.has(pid)) byPid.set(pid, c);
    }
    expect(byPid.size).toBe(2);
    const admin = await client(`${server.url}?user=admin`);
    const opened = clients.filter((c) => c !== admin && c.ws.readyState === WebSocket.OPEN);
    expect(await call(admin, "disconnect_user", { user: "ada" })).toBe(opened.length);
    for (const c of opened) expect((await c.closed).code).toBe(1008);
  });

  it("starts another worker when one dies, the other unaffected", async () => {
    const server = await startServer([...CLI, "--workers", "2"]);
    running.push(server);
    const workers = await onEachWorker(server.url, 2);
    const [[deadPid], [livePid, live]] = [...workers.entries()] as [
      [number, WsClient],
      [number, WsClient],
    ];
    await subscribe(live, "news");
    process.kill(deadPid, "SIGKILL");
    await (workers.get(deadPid) as WsClient).closed;
    await call(live, "burst", { count: 5 });
    expect(await broadcasts(live, 5)).toHaveLength(5);
    // The replacement serves, and hears the live worker's broadcasts.
    await eventually(async () => {
      const c = await client(server.url);
      const { pid } = (await call(c, "whoami")) as { pid: number };
      expect([livePid, deadPid]).not.toContain(pid);
      await subscribe(c, "news");
      await call(live, "burst", { count: 1 });
      expect(await broadcasts(c, 1)).toHaveLength(1);
    });
    expect(server.output()).toContain(`worker ${deadPid} died`);
    expect(await server.stop()).toBe(0);
  }, 60_000);

  it("relays over Redis instead when given --redis", async () => {
    const redis = await startRedis();
    try {
      const server = await startServer([...CLI, "--workers", "2", "--redis", redis.url]);
      running.push(server);
      const other = await nodeInstance("single", redis);
      const workers = await onEachWorker(server.url, 2);
      const onOther = await client(other.url);
      await subscribe(onOther, "news");
      for (const c of workers.values()) await subscribe(c, "news");
      await call(onOther, "burst", { count: 30 });
      for (const c of [...workers.values(), onOther]) {
        expect(await broadcasts(c, 30)).toEqual(sequence("single", 30));
      }
    } finally {
      await redis.kill();
    }
  }, 60_000);
  it("takes the relay's prefix with --prefix, and says when the broker has instances under another", async () => {
    const redis = await startRedis();
    try {
      const start = async (name: string, ...prefix: string[]) => {
        const server = await startServer([...CLI, "--redis", redis.url, ...prefix], {
          env: { INSTANCE: name },
        });
        running.push(server);
        return server;
      };
      const [a, b] = [await start("a", "--prefix", "chat:"), await start("b", "--prefix", "chat:")];
      // Started without --prefix (the default socketapi:): it meets neither, and says why.
      const lone = await start("lone");
      const [onB, onLone] = [await client(b.url), await client(lone.url)];
      await subscribe(onB, "news");
      await subscribe(onLone, "news");
      await call(await client(a.url), "burst", { count: 3 });
      expect(await broadcasts(onB, 3)).toEqual(sequence("a", 3));
      await onLone.expectNone(300);
      expect(a.output()).toContain('(relay: Redis, prefix "chat:")');
      const report = await relayReport(onLone);
      expect(report.errors.join("\n")).toContain(
        'also has instances under other prefixes: "chat:" (2). Instances meet only under the same prefix',
      );
      // With no --redis or --nats, --prefix is refused.
      const refused = runToExit([...CLI.slice(0, 3), "--port", "0", "--prefix", "x:"]);
      expect(refused.status).toBe(2);
      expect(refused.text).toContain("--prefix is the relay's: give it with --redis or --nats.");
    } finally {
      await redis.kill();
    }
  }, 60_000);

  it("says once, not once per worker, that the broker cannot be reached, and exits 1", async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const output = runToExit([...CLI.slice(0, 3), "--workers", "2", "--port", "0", "--redis", url]);
    expect(output.status).toBe(1);
    const said = `cannot connect to Redis at ${url}`;
    expect(output.text.split(said)).toHaveLength(2);
    expect(output.text).not.toContain("worker");
  }, 30_000);
});

describe("behind nginx, configured as docs/scaling.md says", () => {
  it("spreads connections over the instances, and broadcasts reach them all", async () => {
    const nginx = ensureNginx();
    expect(nginx, "nginx is not installed, nor installable").toBeDefined();
    const redis = await startRedis();
    let proxy: Nginx | undefined;
    try {
      const [a, b] = await Promise.all([nodeInstance("a", redis), nodeInstance("b", redis)]);
      const guide = await readFile(join(root, "docs", "scaling.md"), "utf8");
      const block = /```nginx\n([\s\S]*?)```/.exec(guide)?.[1];
      expect(block).toBeDefined();
      const port = await freePort();
      // The guide's configuration, pointed at these instances and a free port.
      const servers = (block as string)
        .replace("server 10.0.0.11:8000;", `server 127.0.0.1:${a.port};`)
        .replace("server 10.0.0.12:8000;", `server 127.0.0.1:${b.port};`)
        .replace("listen 80;", `listen 127.0.0.1:${port};`);
      expect(servers).not.toContain("10.0.0.");
      proxy = startNginx(nginx as string, servers);
      const url = `ws://127.0.0.1:${port}/`;
      await eventually(async () => {
        (await client(url)).ws.terminate();
      }, 10_000);
      const seen = new Map<string, WsClient>();
      for (let attempt = 0; seen.size < 2 && attempt < 10; attempt++) {
        const c = await client(url);
        const { instance } = (await call(c, "whoami")) as { instance: string };
        if (!seen.has(instance)) seen.set(instance, c);
      }
      expect([...seen.keys()].sort()).toEqual(["a", "b"]);
      for (const c of seen.values()) await subscribe(c, "news");
      await call(seen.get("a") as WsClient, "burst", { count: 20 });
      for (const c of seen.values()) expect(await broadcasts(c, 20)).toEqual(sequence("a", 20));
    } finally {
      await proxy?.stop();
      await redis.kill();
    }
  }, 60_000);
});
