// What handlers see (connection, request, signal), the hooks, and the order of answers.
import * as v from "valibot";
import { describe, expect, it, vi } from "vitest";
import { admitUpgrade, hubOf } from "../src/adapter.ts";
import { type Connection, SocketAPI } from "../src/index.ts";
import { connect } from "./helpers/fake-client.ts";

const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));

describe("handler context", () => {
  it("gives each connection its own id and state, kept across frames", async () => {
    const app = new SocketAPI({ onConnect: () => ({ count: 0 }) })
      .action("count", (_, ctx) => ++ctx.connection.state.count)
      .action("id", (_, ctx) => ctx.connection.id);
    const a = await connect(app);
    const b = await connect(app);
    expect((await a.request({ type: "action", channel: "count" })).data).toBe(1);
    expect((await a.request({ type: "action", channel: "count" })).data).toBe(2);
    expect((await b.request({ type: "action", channel: "count" })).data).toBe(1);
    const idA = (await a.request({ type: "action", channel: "id" })).data;
    const idB = (await b.request({ type: "action", channel: "id" })).data;
    expect(idA).toMatch(/^[0-9a-f-]{36}$/);
    expect(idA).not.toBe(idB);
  });

  it("sends to this client only with connection.send", async () => {
    const app = new SocketAPI().action("whisper", (_, ctx) => {
      ctx.connection.send({ type: "data", channel: "inbox", data: "psst" });
    });
    const speaker = await connect(app);
    const other = await connect(app);
    speaker.send({ type: "action", channel: "whisper" });
    expect(await speaker.next()).toEqual({ type: "data", channel: "inbox", data: "psst" });
    expect(await speaker.next()).toMatchObject({ status: "completed" });
    await other.expectNone();
  });

  it("closes this connection with connection.close", async () => {
    const app = new SocketAPI().action("leave", (_, ctx) => ctx.connection.close(4000, "bye"));
    const client = await connect(app);
    client.send({ type: "action", channel: "leave" });
    await tick();
    expect(client.socket.closedWith).toEqual({ code: 4000, reason: "bye" });
    expect(app.connections.size).toBe(0);
  });

  it("exposes the upgrade request's url and headers", async () => {
    const app = new SocketAPI().action("whoami", (_, ctx) => ({
      url: ctx.request.url,
      agent: ctx.request.headers.get("user-agent"),
    }));
    const client = await connect(app, {
      url: "http://host/ws?x=1",
      headers: { "User-Agent": "probe/1" },
    });
    expect((await client.request({ type: "action", channel: "whoami" })).data).toEqual({
      url: "http://host/ws?x=1",
      agent: "probe/1",
    });
  });

  it("aborts the signal when the connection closes", async () => {
    let seen: AbortSignal | undefined;
    const app = new SocketAPI().action("long", async (_, ctx) => {
      seen = ctx.signal;
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
      return "stopped";
    });
    const client = await connect(app);
    client.send({ type: "action", channel: "long" });
    await tick();
    expect(seen?.aborted).toBe(false);
    client.disconnect();
    expect(seen?.aborted).toBe(true);
  });

  it("passes the request id to the handler", async () => {
    const app = new SocketAPI().action("myid", (_, ctx) => ctx.id ?? null);
    const client = await connect(app);
    expect((await client.request({ type: "action", channel: "myid", id: "abc" })).data).toBe("abc");
    expect((await client.request({ type: "action", channel: "myid" })).data).toBe(null);
  });
});

describe("hooks", () => {
  it("refuses an upgrade with the Response onConnect returns, before any session exists", async () => {
    const app = new SocketAPI({
      onConnect: (request) =>
        request.headers.get("authorization") === "Bearer ok"
          ? { user: "ada" }
          : new Response("Unauthorized", { status: 401 }),
    }).action("me", (_, ctx) => ctx.connection.state.user);
    const refusal = await connect(app).catch((response: Response) => response);
    expect(refusal).toBeInstanceOf(Response);
    expect((refusal as Response).status).toBe(401);
    expect(app.connections.size).toBe(0);
    const client = await connect(app, { headers: { authorization: "Bearer ok" } });
    expect((await client.request({ type: "action", channel: "me" })).data).toBe("ada");
  });

  it("refuses with 500 when onConnect throws, and reports the error", async () => {
    const onError = vi.fn();
    const app = new SocketAPI({
      onConnect: () => {
        throw new Error("auth service down");
      },
      onError,
    });
    const admission = await admitUpgrade(app, { url: "http://x/", headers: new Headers() });
    expect(admission.ok).toBe(false);
    expect(!admission.ok && admission.response.status).toBe(500);
    expect(onError).toHaveBeenCalledWith(
      expect.objectContaining({ message: "auth service down" }),
      {
        phase: "connect",
      },
    );
  });

  it("calls onDisconnect with the close code after the subscriptions ended", async () => {
    const seen: { code: number; reason: string; subscriptions: number; hubSize: number }[] = [];
    const app: SocketAPI = new SocketAPI({
      onDisconnect: (connection: Connection, { code, reason }) => {
        seen.push({
          code,
          reason,
          subscriptions: connection.subscriptions.size,
          hubSize: hubOf(app).index.size(),
        });
      },
    }).channel("c", () => 1) as unknown as SocketAPI;
    const client = await connect(app);
    client.send({ type: "subscribe", channel: "c" });
    await client.next();
    client.socket.close(4001, "gone");
    expect(seen).toEqual([{ code: 4001, reason: "gone", subscriptions: 0, hubSize: 0 }]);
  });

  it("hands a failing onDisconnect to onError", async () => {
    const onError = vi.fn();
    const app = new SocketAPI({
      onDisconnect: async () => {
        throw new Error("cleanup failed");
      },
      onError,
    });
    const client = await connect(app);
    client.disconnect();
    await tick();
    expect(onError).toHaveBeenCalledWith(
      expect.objectContaining({ message: "cleanup failed" }),
      expect.objectContaining({ phase: "disconnect" }),
    );
  });

  it("logs unexpected errors with console.error when there is no onError", async () => {
    const log = vi.spyOn(console, "error").mockImplementation(() => {});
    const client = await connect(
      new SocketAPI().action("boom", () => {
        throw new Error("boom");
      }),
    );
    expect((await client.request({ type: "action", channel: "boom" })).code).toBe("INTERNAL_ERROR");
    expect(log).toHaveBeenCalledWith(
      "[socketapi] unexpected error (action)",
      expect.objectContaining({ message: "boom" }),
    );
    log.mockRestore();
  });
});

describe("order of answers", () => {
  function slowFastApp(concurrency?: number) {
    return new SocketAPI(concurrency ? { concurrency } : {})
      .action("slow", async () => {
        await tick(30);
        return "slow";
      })
      .action("fast", () => "fast")
      .action("echo", { input: v.object({ n: v.number() }) }, async ({ n }) => {
        await tick(Math.random() * 5);
        return n;
      });
  }

  it("answers frames in arrival order even when a later one is faster", async () => {
    const client = await connect(slowFastApp());
    client.send({ type: "action", channel: "slow" });
    client.send({ type: "action", channel: "fast" });
    client.sendRaw('{"type":"ping"}');
    client.send({ type: "nope", channel: "x" });
    expect((await client.next()).data).toBe("slow");
    expect((await client.next()).data).toBe("fast");
    expect((await client.next()).type).toBe("pong");
    expect((await client.next()).code).toBe("UNKNOWN_TYPE");
  });

  it("keeps the order of many answers with random delays", async () => {
    const client = await connect(slowFastApp());
    for (let n = 0; n < 50; n++)
      client.send({ type: "action", channel: "echo", data: { n }, id: n });
    for (let n = 0; n < 50; n++) expect(await client.next()).toMatchObject({ data: n, id: n });
  });

  it("lets a faster answer overtake when the app allows concurrent handling", async () => {
    const client = await connect(slowFastApp(4));
    client.send({ type: "action", channel: "slow", id: 1 });
    client.send({ type: "action", channel: "fast", id: 2 });
    expect((await client.next()).id).toBe(2);
    expect((await client.next()).id).toBe(1);
  });
});
