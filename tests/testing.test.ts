// socketapi/testing: an app tested without a network, as its users test theirs.
import * as v from "valibot";
import { describe, expect, it, vi } from "vitest";
import seed from "../examples/main.ts";
import { hubOf } from "../src/adapter.ts";
import { SocketAPI, subscribeParam } from "../src/index.ts";
import { ConnectionRefusedError, createTestClient } from "../src/testing.ts";

const onDisconnect = vi.fn();
const app = new SocketAPI({
  onConnect: (request) => {
    const auth = request.headers.get("authorization");
    if (auth !== "Bearer ok") return new Response("Unauthorized", { status: 401 });
    return { user: new URL(request.url).searchParams.get("user") ?? "ada" };
  },
  onDisconnect,
})
  .action("me", (_, ctx) => ctx.connection.state.user)
  .channel(
    "rooms/{room}",
    {
      params: v.object({ room: v.string(), token: subscribeParam(v.optional(v.string(), "")) }),
      initialData: true,
    },
    ({ room, token }) => ({ room, token }),
  );

describe("createTestClient", () => {
  it("connects through onConnect with the given URL and headers", async () => {
    const client = await createTestClient(app, {
      url: "http://test/?user=grace",
      headers: { authorization: "Bearer ok" },
    });
    expect(await client.action("me")).toBe("grace");
    expect(client.connection.state).toEqual({ user: "grace" });
  });

  it("rejects with the refusal's status when onConnect refuses", async () => {
    const refused = await createTestClient(app).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ConnectionRefusedError);
    expect(refused).toMatchObject({ status: 401 });
    expect(await (refused as ConnectionRefusedError).response.text()).toBe("Unauthorized");
  });

  it("sends raw frames and reads every frame in order", async () => {
    const client = await createTestClient(seed);
    client.sendRaw("{oops");
    client.send({ type: "action", channel: "add_numbers", data: { a: 2, b: 2 }, id: "x" });
    client.sendBinary();
    expect(await client.next()).toMatchObject({ code: "INVALID_JSON" });
    expect(await client.next()).toEqual({
      type: "action",
      channel: "add_numbers",
      status: "completed",
      data: 4,
      id: "x",
    });
    expect(await client.next()).toMatchObject({ code: "INVALID_MESSAGE" });
    await client.expectNone();
    await expect(client.expectNone()).resolves.toBeUndefined();
    client.send({ type: "ping" });
    await expect(client.expectNone()).rejects.toThrow('Expected no frame, got {"type":"pong"}');
  });

  it("offers the typed calls of the real client, and sees broadcasts the app triggers", async () => {
    const client = await createTestClient(app, { headers: { authorization: "Bearer ok" } });
    const seen: unknown[] = [];
    const stop = client.subscribe("rooms/7", { token: "t" }, (data) => seen.push(data));
    await stop.ready;
    await app.channels["rooms/{room}"]({ room: "7" });
    await vi.waitFor(() =>
      expect(seen).toEqual([
        { room: "7", token: "t" },
        { room: "7", token: "" },
      ]),
    );
    await stop();
    expect(client.connection.subscriptions.size).toBe(0);
  });

  it("disconnects like a client: the server cleans up and calls onDisconnect", async () => {
    onDisconnect.mockClear();
    const client = await createTestClient(app, { headers: { authorization: "Bearer ok" } });
    await client.subscribe("rooms/1", () => {}).ready;
    client.disconnect(4000, "bye");
    await vi.waitFor(() => expect(onDisconnect).toHaveBeenCalledOnce());
    expect(onDisconnect.mock.calls[0]?.[1]).toEqual({ code: 4000, reason: "bye" });
    expect(hubOf(app).subscriberCount("rooms/1")).toBe(0);
    expect(client.status).toBe("closed");
  });

  it("serves many concurrent requests, each answered with its own result", async () => {
    const client = await createTestClient(seed);
    const sums = await Promise.all(
      Array.from({ length: 200 }, (_, i) => client.action("add_numbers", { a: i, b: i })),
    );
    expect(sums).toEqual(Array.from({ length: 200 }, (_, i) => 2 * i));
  });
});

describe("createTestClient with a streaming action", () => {
  it("reads the chunks, and leaving the loop early stops the generator", async () => {
    let finished = 0;
    const streaming = new SocketAPI().action("count", async function* () {
      try {
        for (let n = 1; ; n++) {
          await new Promise((resolve) => setTimeout(resolve, 1));
          yield n;
          if (n === 3 && finished > 0) return n;
        }
      } finally {
        finished++;
      }
    });
    const client = await createTestClient(streaming);
    const seen: number[] = [];
    for await (const n of client.stream("count")) {
      seen.push(n);
      if (n === 5) break;
    }
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    await vi.waitFor(() => expect(finished).toBe(1));
    const again = client.stream("count");
    const all: number[] = [];
    for await (const n of again) all.push(n);
    expect(all).toEqual([1, 2, 3]);
    expect(await again.result).toBe(3);
    client.close();
  });
});

describe("createTestClient with a token", () => {
  it("offers it as the real client does, and refreshes it ahead of each expiry", async () => {
    const refreshed: string[] = [];
    const expiring = new SocketAPI({
      onConnect: (_, credential) => {
        credential.expiresAt = Date.now() + 300;
        return { token: credential.token, source: credential.source };
      },
      onRefresh: (credential, connection) => {
        refreshed.push(credential.token);
        credential.expiresAt = Date.now() + 300;
        return connection.state;
      },
    }).action("me", (_, ctx) => ctx.connection.state);
    let issued = 0;
    const client = await createTestClient<typeof expiring>(expiring, {
      token: () => `t-${++issued}`,
    });
    expect(await client.action("me")).toEqual({ token: "t-1", source: "protocol" });
    expect(client.connection.request.headers.get("sec-websocket-protocol")).toBe("socketapi");
    // Refreshed ahead of each expiry: still open well past the first.
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(client.status).toBe("open");
    expect(refreshed.slice(0, 2)).toEqual(["t-2", "t-3"]);
    client.close();
  });
});
