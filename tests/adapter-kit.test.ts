// The adapter kit is enough to write an adapter: one is written here, over a fake runtime,
// with `socketapi` and `socketapi/adapter` and nothing else, as a third party would; and
// the bundled adapters use nothing else either.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { SocketAPI } from "socketapi";
import {
  admitUpgrade,
  closeSessions,
  isWebSocketUpgrade,
  openConnection,
  refusalOf,
  routeRequest,
  type Session,
  type SocketLike,
} from "socketapi/adapter";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { root } from "./helpers/server-process.ts";

/** A runtime of our own making: it hands the adapter requests and sockets, nothing more. */
class FakeSocket implements SocketLike {
  readyState = 1;
  readonly sent: string[] = [];
  closed: { code: number | undefined; reason: string | undefined } | undefined;
  onClose: ((code: number, reason: string) => void) | undefined;

  send(data: string): void {
    this.sent.push(data);
  }

  close(code?: number, reason?: string): void {
    if (this.readyState !== 1) return;
    this.readyState = 3;
    this.closed = { code, reason };
    queueMicrotask(() => this.onClose?.(code ?? 1005, reason ?? ""));
  }
}

// biome-ignore lint/suspicious/noExplicitAny: an adapter serves any app.
type AnyApp = SocketAPI<any, any, any>;

/** The adapter: the request table, admission, a session per socket, shutdown. */
function fakeAdapter(app: AnyApp, options: { path?: string } = {}) {
  const sessions = new Set<Session<object>>();
  let stopping = false;
  return {
    /** Answers a request; for an accepted upgrade, also the socket now served. */
    async request(
      request: Request,
    ): Promise<{ response: Response | undefined; socket?: FakeSocket }> {
      const path = new URL(request.url).pathname;
      const upgrade = isWebSocketUpgrade(request.headers.get("upgrade"));
      const route = routeRequest(path, upgrade, { path: options.path, broadcast: false }, stopping);
      if (route !== "upgrade") return { response: refusalOf(route as "not-found") };
      const admission = await admitUpgrade(app, { url: request.url, headers: request.headers });
      if (!admission.ok) return { response: admission.response };
      const socket = new FakeSocket();
      const session = openConnection(app, socket, request, admission.state, {
        slot: admission.slot,
      });
      sessions.add(session);
      socket.onClose = (code, reason) => {
        session.handleClose(code, reason);
        sessions.delete(session);
      };
      return { response: undefined, socket };
    },
    /** Feeds a frame the client sent. */
    message(socket: FakeSocket, text: string): void {
      for (const session of sessions) if (session.socket === socket) session.receiveText(text);
    },
    async shutdown(): Promise<void> {
      stopping = true;
      await closeSessions(sessions, 1000);
    },
  };
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 5));

describe("an adapter written with the kit alone", () => {
  const app = new SocketAPI({
    onConnect: (request) =>
      new URL(request.url).searchParams.get("token") === "bad"
        ? new Response("no", { status: 401 })
        : { user: "ada" },
  })
    .action(
      "add_numbers",
      { input: v.object({ a: v.number(), b: v.number() }) },
      ({ a, b }) => a + b,
    )
    .channel("chat", { params: v.object({ message: v.optional(v.string(), "") }) }, (p) => p);

  it("serves actions and broadcasts, refuses by the table and by onConnect, and shuts down", async () => {
    const adapter = fakeAdapter(app, { path: "/ws" });
    const upgrade = (url: string) =>
      adapter.request(new Request(url, { headers: { upgrade: "websocket" } }));

    expect((await adapter.request(new Request("http://fake/ws"))).response?.status).toBe(426);
    expect((await upgrade("http://fake/other")).response?.status).toBe(404);
    expect((await upgrade("http://fake/ws?token=bad")).response?.status).toBe(401);

    const { socket } = await upgrade("http://fake/ws");
    if (!socket) throw new Error("not upgraded");
    adapter.message(
      socket,
      '{"type":"action","channel":"add_numbers","data":{"a":5,"b":3},"id":1}',
    );
    adapter.message(socket, '{"type":"subscribe","channel":"chat"}');
    await flush();
    expect(await app.channels.chat({ message: "hi" })).toBe(1);
    expect(socket.sent.map((frame) => JSON.parse(frame))).toEqual([
      { type: "action", channel: "add_numbers", status: "completed", data: 8, id: 1 },
      { type: "subscribed", channel: "chat" },
      { type: "data", channel: "chat", data: { message: "hi" } },
    ]);

    await adapter.shutdown();
    expect(socket.closed).toEqual({ code: 1001, reason: "Server shutting down" });
    expect(app.connections.size).toBe(0);
    expect((await upgrade("http://fake/ws")).response?.status).toBe(503);
  });
});

describe("the bundled adapters", () => {
  it("import only the adapter kit, the public API, their capabilities, their own modules and their runtime", async () => {
    const dir = join(root, "adapters");
    const files = (await readdir(dir, { recursive: true })).filter((file) => file.endsWith(".ts"));
    const runtimeModules = /^(node:|ws$|bun$|hono(\/|$)|cloudflare:workers$)/;
    for (const file of files) {
      // An adapter is `name.ts` with its modules in `name/`: they may import each other.
      const adapter = file.split("/")[0]?.replace(/\.ts$/, "") as string;
      const here = join(dir, file, "..");
      const text = await readFile(join(dir, file), "utf8");
      const specifiers = [
        ...text.matchAll(/^(?:import|export)[^"']*?from\s+["']([^"']+)["']/gm),
      ].map((match) => match[1] as string);
      for (const specifier of specifiers) {
        let allowed: boolean;
        if (!specifier.startsWith(".")) allowed = runtimeModules.test(specifier);
        else {
          const target = join(here, specifier).slice(root.length + 1);
          allowed =
            target === "src/adapter.ts" ||
            target === "src/index.ts" ||
            target === "adapters/capabilities.ts" ||
            target === `adapters/${adapter}.ts` ||
            target.startsWith(`adapters/${adapter}/`) ||
            // The node:cluster relay is a relay like the brokers', re-exported by Node's entry.
            (file === "node.ts" && target === "relays/cluster.ts");
        }
        expect(allowed, `${file} imports ${specifier}`).toBe(true);
      }
    }
  });

  it("and no module imports its own entry: what an entry and its modules share is in a leaf", async () => {
    for (const dir of ["adapters", "relays"]) {
      const files = (await readdir(join(root, dir), { recursive: true })).filter(
        (file) => file.endsWith(".ts") && file.includes("/"),
      );
      for (const file of files) {
        const text = await readFile(join(root, dir, file), "utf8");
        const entry = `${file.split("/")[0]}.ts`;
        const specifiers = [
          ...text.matchAll(/^(?:import|export)[^"']*?from\s+["']([^"']+)["']/gm),
        ].map((match) => match[1] as string);
        for (const specifier of specifiers) {
          const target = join(root, dir, file, "..", specifier).slice(root.length + 1);
          expect(target, `${dir}/${file} imports its entry ${entry}`).not.toBe(`${dir}/${entry}`);
        }
      }
    }
    // Nor does src/: no module of it imports an entry point.
    const sources = (await readdir(join(root, "src"), { recursive: true })).filter((file) =>
      file.endsWith(".ts"),
    );
    for (const file of sources) {
      const text = await readFile(join(root, "src", file), "utf8");
      for (const [, specifier] of text.matchAll(
        /^(?:import|export)[^"']*?from\s+["']([^"']+)["']/gm,
      )) {
        const target = join(root, "src", file, "..", specifier as string).slice(root.length + 1);
        const entries = ["src/index.ts", "src/adapter.ts", "src/testing.ts", "src/client/index.ts"];
        if (entries.includes(`src/${file}`)) continue;
        expect(entries.includes(target), `src/${file} imports ${target}`).toBe(false);
      }
    }
  });

  it("have the same sections in the same order", async () => {
    const order = [
      "Options",
      "Sockets",
      "Upgrades",
      "Broadcast endpoint",
      "Docs",
      "Serving",
      "Relays",
      "Hono",
    ];
    for (const adapter of ["node", "bun", "deno", "hono", "cloudflare"]) {
      const text = await readFile(join(root, "adapters", `${adapter}.ts`), "utf8");
      const sections = [...text.matchAll(/^\/\/ --- (.+) ---$/gm)].map((match) => match[1]);
      expect(sections.length, adapter).toBeGreaterThanOrEqual(2);
      expect(sections, adapter).toEqual(order.filter((name) => sections.includes(name)));
    }
  });

  it("and the relays import only the kit, the public API, each other and their broker's client", async () => {
    const dir = join(root, "relays");
    const files = (await readdir(dir)).filter((file) => file.endsWith(".ts"));
    expect(files).toEqual(expect.arrayContaining(["redis.ts", "nats.ts"]));
    const clients = /^(ioredis|@nats-io\/transport-node|node:cluster)$/;
    for (const file of files) {
      const text = await readFile(join(dir, file), "utf8");
      const specifiers = [
        ...text.matchAll(/(?:^(?:import|export)[^"']*?from\s+|import\()["']([^"']+)["']/gm),
      ].map((match) => match[1] as string);
      // The entries import the kit (a leaf of their own may import nothing).
      if (file === "redis.ts" || file === "nats.ts")
        expect(specifiers.length, file).toBeGreaterThan(0);
      for (const specifier of specifiers) {
        const allowed = specifier.startsWith(".")
          ? ["../src/adapter.ts", "../src/index.ts"].includes(specifier) ||
            /^\.\/[\w-]+\.ts$/.test(specifier)
          : clients.test(specifier);
        expect(allowed, `${file} imports ${specifier}`).toBe(true);
      }
    }
  });

  it("keep adapter internals out of the app's public type", () => {
    const app = new SocketAPI();
    for (const internal of ["admit", "open", "findAction", "findChannel", "sessionClosed", "hub"]) {
      expect(internal in app, internal).toBe(false);
    }
  });
});
