// Inside workerd: the Worker routes connections to Durable Objects that hibernate with
// their subscriptions and state, broadcasts reach every shard, pings never wake the object.
import {
  createExecutionContext,
  env,
  listDurableObjectIds,
  runDurableObjectAlarm,
  runInDurableObject,
  SELF,
} from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { compressesWebSockets } from "../../adapters/cloudflare/compression.ts";
import { cloudflare } from "../../adapters/cloudflare.ts";
import { SocketAPI } from "../../src/index.ts";
import { metricsReader, SocketAPIObject, worker } from "./worker.ts";

// biome-ignore lint/suspicious/noExplicitAny: frames are checked by the tests.
type Frame = Record<string, any>;

interface Client {
  ws: WebSocket;
  send(frame: unknown): void;
  next(ms?: number): Promise<Frame>;
  request(frame: unknown): Promise<Frame>;
  expectNone(ms?: number): Promise<void>;
}

async function connect(
  query: string,
  headers: Record<string, string> = {},
  path = "/",
): Promise<Client> {
  const response = await SELF.fetch(`http://example.com${path}?${query}`, {
    headers: { upgrade: "websocket", ...headers },
  });
  const ws = response.webSocket;
  if (!ws) throw new Error(`no WebSocket: HTTP ${response.status}`);
  ws.accept();
  const frames: string[] = [];
  const waiters: (() => void)[] = [];
  ws.addEventListener("message", (event) => {
    frames.push(event.data as string);
    for (const wake of waiters.splice(0)) wake();
  });
  const next = async (ms = 2000): Promise<Frame> => {
    const deadline = Date.now() + ms;
    while (frames.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return JSON.parse(frames.shift() as string);
  };
  const send = (frame: unknown) => ws.send(JSON.stringify(frame));
  return {
    ws,
    send,
    next,
    request: (frame) => {
      send(frame);
      return next();
    },
    async expectNone(ms = 100) {
      await new Promise((resolve) => setTimeout(resolve, ms));
      if (frames.length > 0) throw new Error(`expected no frame, got ${frames[0]}`);
    },
  };
}

const stubFor = (room: string) => env.SOCKETAPI.get(env.SOCKETAPI.idFromName(room));

describe("the Worker", () => {
  it("refuses an upgrade in the Worker, before any object exists", async () => {
    const response = await SELF.fetch("http://example.com/?room=refused&token=bad", {
      headers: { upgrade: "websocket" },
    });
    expect(response.status).toBe(401);
    expect(response.webSocket).toBeNull();
    const ids = await listDurableObjectIds(env.SOCKETAPI);
    expect(ids.some((id) => id.equals(env.SOCKETAPI.idFromName("refused")))).toBe(false);
  });

  it("runs without WebSocket compression: the no_web_socket_compression flag of its wrangler.toml", async () => {
    // Whatever the Worker answers, workerd negotiates permessage-deflate without the flag
    // (tests/workerd-alone.test.ts shows it against workerd alone; local dev puts a proxy of
    // its own in front, which negotiates compression with the client on its own).
    expect(compressesWebSockets()).toBe(false);
    const request = new Request("http://example.com/?room=deflate", {
      headers: {
        upgrade: "websocket",
        "sec-websocket-extensions": "permessage-deflate; client_max_window_bits",
      },
    });
    const response = await worker.fetch(request, env, createExecutionContext());
    expect(response.status).toBe(101);
    expect(response.headers.get("sec-websocket-extensions")).toBeNull();
    response.webSocket?.accept();
    response.webSocket?.close(1000);
  });

  it("routes each room to its own object and serves actions there", async () => {
    const client = await connect("room=alpha&user=ada");
    expect(await client.request({ type: "action", channel: "visit" })).toEqual({
      type: "action",
      channel: "visit",
      status: "completed",
      data: { user: "ada", visits: 1 },
    });
    const sockets = await runInDurableObject(
      stubFor("alpha"),
      (_, state) => state.getWebSockets().length,
    );
    expect(sockets).toBe(1);
  });
});

describe("hibernation", () => {
  it("rebuilds subscriptions, state and ids from the attachments alone, unsubscribes included", async () => {
    const client = await connect("room=hibernate&user=grace", { "x-client": "probe/1" });
    await client.request({ type: "subscribe", channel: "news" });
    await client.request({ type: "subscribe", channel: "rooms/hibernate" });
    await client.request({ type: "subscribe", channel: "tagged", data: { tag: "blue" } });
    await client.request({ type: "unsubscribe", channel: "tagged" });
    await client.request({ type: "action", channel: "visit" });
    const before = (await client.request({ type: "action", channel: "whoami" })).data;

    // A fresh instance of the object, as after an eviction: it only has the sockets and
    // their attachments.
    const restored = await runInDurableObject(stubFor("hibernate"), async (_, state) => {
      const fresh = new SocketAPIObject(state, env);
      const [ws] = state.getWebSockets();
      fresh.webSocketMessage(
        ws as WebSocket,
        JSON.stringify({ type: "action", channel: "whoami" }),
      );
      return {
        news: await fresh.deliver("news", '{"type":"data","channel":"news","data":"after wake"}'),
        room: await fresh.deliver(
          "rooms/hibernate",
          '{"type":"data","channel":"rooms/hibernate","data":1}',
        ),
        tagged: await fresh.deliver("tagged", '{"type":"data","channel":"tagged","data":2}'),
      };
    });
    expect(restored).toEqual({ news: 1, room: 1, tagged: 0 });
    // The action's answer and the two broadcasts, in whatever order the object sent them.
    const frames = [await client.next(), await client.next(), await client.next()];
    expect(frames.filter((frame) => frame.type === "data")).toEqual([
      { type: "data", channel: "news", data: "after wake" },
      { type: "data", channel: "rooms/hibernate", data: 1 },
    ]);
    const whoami = frames.find((frame) => frame.type === "action");
    expect(whoami?.data).toEqual(before);
    expect(whoami?.data).toMatchObject({ state: { user: "grace", visits: 1 } });
    await client.expectNone();
  });

  it("keeps the chosen upgrade headers for handlers after a wake", async () => {
    const client = await connect("room=headers", { "x-client": "probe/2" });
    await client.request({ type: "action", channel: "whoami" });
    const kept = await runInDurableObject(stubFor("headers"), (_, state) => {
      const [ws] = state.getWebSockets();
      return (ws?.deserializeAttachment() as { h: [string, string][] } | undefined)?.h;
    });
    expect(kept).toEqual([["x-client", "probe/2"]]);
  });

  it("keeps neither a long token in the URL's query nor its bytes: subscriptions still fit", async () => {
    const token = "t".repeat(4096);
    const client = await connect(`room=jwt&user=ada&token=${token}`);
    expect(await client.request({ type: "subscribe", channel: "news" })).toMatchObject({
      type: "subscribed",
    });
    const { url } = (await client.request({ type: "action", channel: "whoami" })).data;
    expect(url).toBe("http://example.com/?room=jwt");
    const attachmentBytes = await runInDurableObject(stubFor("jwt"), (_, state) => {
      const [ws] = state.getWebSockets();
      return new TextEncoder().encode(JSON.stringify(ws?.deserializeAttachment())).byteLength;
    });
    expect(attachmentBytes).toBeLessThan(300);
  });

  it("refuses a subscription that would outgrow the attachment with TOO_MANY_SUBSCRIPTIONS", async () => {
    const client = await connect("room=big");
    let refused: Frame | undefined;
    for (let i = 0; i < 200 && !refused; i++) {
      const reply = await client.request({
        type: "subscribe",
        channel: `rooms/${"x".repeat(40)}${i}`,
        id: i,
      });
      if (reply.type === "error") refused = reply;
    }
    expect(refused).toMatchObject({
      code: "TOO_MANY_SUBSCRIPTIONS",
      channel: expect.stringMatching(/^rooms\//),
    });
    expect(refused?.message).toMatch(
      /^This connection cannot keep another subscription: .* would take \d+ bytes \(subscriptions \d+ bytes, state \d+, request \d+\), over the 2048-byte limit of a socket attachment \(maxAttachmentBytes\)\. Unsubscribe from a channel first\.$/,
    );
    const attachmentBytes = await runInDurableObject(stubFor("big"), (_, state) => {
      const [ws] = state.getWebSockets();
      return new TextEncoder().encode(JSON.stringify(ws?.deserializeAttachment())).byteLength;
    });
    expect(attachmentBytes).toBeLessThanOrEqual(2048);
    expect((await client.request({ type: "action", channel: "visit" })).status).toBe("completed");
  });
});

describe("credentials", () => {
  // What the typed client offers: `socketapi`, and the token in base64url.
  const offering = (token: string) => ({
    "sec-websocket-protocol": `socketapi, socketapi.bearer.${btoa(token).replace(/=+$/, "")}`,
  });

  it("answers socketapi alone, keeps the token in the Worker, and sets the object's alarm for the expiry", async () => {
    const response = await SELF.fetch("http://example.com/?room=expiring", {
      headers: { upgrade: "websocket", ...offering("ttl:60000") },
    });
    expect(response.status).toBe(101);
    expect(response.headers.get("sec-websocket-protocol")).toBe("socketapi");
    const ws = response.webSocket as WebSocket;
    ws.accept();
    const first = await new Promise<Frame>((resolve) =>
      ws.addEventListener("message", (event) => resolve(JSON.parse(event.data as string)), {
        once: true,
      }),
    );
    expect(first.type).toBe("expiry");
    expect(first.expiresIn).toBeGreaterThan(55_000);
    const seen = await runInDurableObject(stubFor("expiring"), async (_, state) => {
      const [socket] = state.getWebSockets();
      return {
        attachment: socket?.deserializeAttachment() as { e?: number; h: unknown },
        alarm: await state.storage.getAlarm(),
      };
    });
    expect(seen.attachment.e).toBeGreaterThan(Date.now() + 55_000);
    // An alarm, not a timer: it wakes a hibernated object.
    expect(seen.alarm).toBe(seen.attachment.e);
    expect(JSON.stringify(seen)).not.toContain("bearer");
    ws.close(1000);
  });

  it("closes at the expiry with 4001 by the alarm, and on wake when the expiry passed meanwhile", async () => {
    const closedWith = (ws: WebSocket) =>
      new Promise<{ code: number; reason: string }>((resolve) =>
        ws.addEventListener("close", (event) =>
          resolve({ code: event.code, reason: event.reason }),
        ),
      );
    const response = await SELF.fetch("http://example.com/?room=expiring-soon", {
      headers: { upgrade: "websocket", ...offering("ttl:300") },
    });
    const ws = response.webSocket as WebSocket;
    ws.accept();
    const closed = closedWith(ws);
    await new Promise((resolve) => setTimeout(resolve, 400));
    // The alarm rings (where the test runner has not run it already).
    await runDurableObjectAlarm(stubFor("expiring-soon"));
    expect(await closed).toEqual({ code: 4001, reason: "Token expired" });

    // Hibernated past its expiry: the object that wakes closes it as it restores it.
    const later = await SELF.fetch("http://example.com/?room=expiring-asleep", {
      headers: { upgrade: "websocket", ...offering("ttl:60000") },
    });
    const sleeper = later.webSocket as WebSocket;
    sleeper.accept();
    const sleeperClosed = closedWith(sleeper);
    await runInDurableObject(stubFor("expiring-asleep"), (_, state) => {
      const [socket] = state.getWebSockets();
      const attachment = socket?.deserializeAttachment() as { e: number };
      socket?.serializeAttachment({ ...attachment, e: Date.now() - 1 });
      new SocketAPIObject(state, env);
    });
    expect(await sleeperClosed).toEqual({ code: 4001, reason: "Token expired" });
  });

  it("moves the expiry and the alarm with a refresh, kept in the attachment", async () => {
    const response = await SELF.fetch("http://example.com/?room=refreshing", {
      headers: { upgrade: "websocket", ...offering("ttl:60000") },
    });
    const ws = response.webSocket as WebSocket;
    ws.accept();
    const frames: Frame[] = [];
    ws.addEventListener("message", (event) => frames.push(JSON.parse(event.data as string)));
    ws.send(JSON.stringify({ type: "refresh", token: "ttl:120000", id: 1 }));
    while (frames.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(frames[1]).toMatchObject({ type: "refreshed", id: 1 });
    expect(frames[1]?.expiresIn).toBeGreaterThan(115_000);
    const e = await runInDurableObject(stubFor("refreshing"), (_, state) => {
      const [socket] = state.getWebSockets();
      return (socket?.deserializeAttachment() as { e: number } | undefined)?.e;
    });
    expect(e).toBeGreaterThan(Date.now() + 115_000);
    ws.close(1000);
  });
});

describe("disconnecting a user", () => {
  it("closes the user's connections in every shard from the Worker, and says how many", async () => {
    const closedWith = (client: Client) =>
      new Promise<number>((resolve) =>
        client.ws.addEventListener("close", (event) => resolve(event.code)),
      );
    const ada = [
      await connect("room=ban-1&user=banned-ada"),
      await connect("room=ban-2&user=banned-ada"),
      await connect("room=ban-2&user=banned-ada"),
    ];
    const grace = await connect("room=ban-1&user=grace");
    // Every connection asked once, so that the objects exist and hold them.
    for (const client of [...ada, grace])
      await client.request({ type: "action", channel: "visit" });
    const closed = ada.map(closedWith);
    const response = await SELF.fetch("http://example.com/disconnect?user=banned-ada");
    expect(await response.json()).toEqual({ closed: 3 });
    expect(await Promise.all(closed)).toEqual([4003, 4003, 4003]);
    expect(grace.ws.readyState).toBe(WebSocket.OPEN);
    // None left: nothing to close, anywhere.
    expect(
      await (await SELF.fetch("http://example.com/disconnect?user=banned-ada")).json(),
    ).toEqual({
      closed: 0,
    });
  });
});

describe("broadcasts", () => {
  it("reach a room's subscribers from the Worker, and no other room", async () => {
    const inA = await connect("room=a");
    const inB = await connect("room=b");
    await inA.request({ type: "subscribe", channel: "rooms/a" });
    await inB.request({ type: "subscribe", channel: "rooms/b" });
    const response = await SELF.fetch("http://example.com/rooms?room=a");
    expect(await response.json()).toEqual({ delivered: 1 });
    expect(await inA.next()).toEqual({
      type: "data",
      channel: "rooms/a",
      data: { room: "a", text: "from the worker" },
    });
    await inB.expectNone();
  });

  it("reach every shard that has subscribers of a channel, from the Worker and from a handler", async () => {
    const inC = await connect("room=c");
    const inD = await connect("room=d");
    const elsewhere = await connect("room=e");
    await inC.request({ type: "subscribe", channel: "alerts" });
    await inD.request({ type: "subscribe", channel: "alerts" });
    const response = await SELF.fetch("http://example.com/alerts?text=everywhere");
    expect(await response.json()).toEqual({ delivered: 2 });
    for (const client of [inC, inD]) {
      expect(await client.next()).toEqual({
        type: "data",
        channel: "alerts",
        data: { text: "everywhere" },
      });
    }
    // From an action in room c: c directly, d over RPC, before c's completion.
    inC.send({ type: "action", channel: "alert", data: { text: "from c" } });
    expect(await inC.next()).toEqual({ type: "data", channel: "alerts", data: { text: "from c" } });
    expect(await inC.next()).toMatchObject({ status: "completed", data: 2 });
    expect(await inD.next()).toEqual({ type: "data", channel: "alerts", data: { text: "from c" } });
    await elsewhere.expectNone(0);
  });

  it("reach the shards that answer when one fails, and report the one that did not", async () => {
    const broken = await connect("room=broken");
    const healthy = await connect("room=g");
    await broken.request({ type: "subscribe", channel: "notices" });
    await healthy.request({ type: "subscribe", channel: "notices" });
    const response = await SELF.fetch("http://example.com/notices?text=partial");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ delivered: 1 });
    expect(await healthy.next()).toEqual({
      type: "data",
      channel: "notices",
      data: { text: "partial" },
    });
  });

  it("forget a shard the directory lists but that has no subscribers left (lost without a close)", async () => {
    const directory = stubFor("__socketapi_directory__") as unknown as {
      trackChannel(channel: string, shard: string, present: boolean): Promise<void>;
      shardsOf(channel: string): Promise<string[]>;
    };
    // What an evicted shard leaves behind: listed, with nobody subscribed there.
    await directory.trackChannel("alerts", "ghost", true);
    const live = await connect("room=live");
    await live.request({ type: "subscribe", channel: "alerts" });
    const response = await SELF.fetch("http://example.com/alerts?text=sweep");
    expect(response.status).toBe(200);
    expect(await live.next()).toEqual({ type: "data", channel: "alerts", data: { text: "sweep" } });
    const deadline = Date.now() + 3000;
    let shards = await directory.shardsOf("alerts");
    while (shards.includes("ghost") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      shards = await directory.shardsOf("alerts");
    }
    expect(shards).not.toContain("ghost");
    expect(shards).toContain("live");
  });

  it("count a channel's subscribers on every shard, from the Worker and from a handler", async () => {
    const clients = await Promise.all(
      ["count-1", "count-1", "count-2"].map((room) => connect(`room=${room}`)),
    );
    for (const client of clients) {
      await client.request({ type: "subscribe", channel: "rooms/counted" });
    }
    const fromWorker = async () =>
      (await SELF.fetch("http://example.com/count?channel=rooms/counted")).json();
    expect(await fromWorker()).toBe(3);
    const idle = await connect("room=count-3");
    const answer = await idle.request({
      type: "action",
      channel: "everywhere",
      data: { channel: "rooms/counted" },
    });
    expect(answer.data).toBe(3);
    // From a shard with subscribers: its own, and the others'.
    const own = await (clients[0] as Client).request({
      type: "action",
      channel: "everywhere",
      data: { channel: "rooms/counted" },
    });
    expect(own.data).toBe(3);
    await (clients[2] as Client).request({ type: "unsubscribe", channel: "rooms/counted" });
    expect(await fromWorker()).toBe(2);
  });

  it("stop reaching a shard once its last subscriber leaves", async () => {
    const inF = await connect("room=f");
    await inF.request({ type: "subscribe", channel: "news" });
    const directory0 = stubFor("__socketapi_directory__") as unknown as {
      shardsOf(channel: string): Promise<string[]>;
    };
    expect(await directory0.shardsOf("news")).toContain("f");
    await inF.request({ type: "unsubscribe", channel: "news" });
    const directory = stubFor("__socketapi_directory__") as unknown as {
      shardsOf(channel: string): Promise<string[]>;
    };
    // Joining is recorded before `subscribed`; leaving is recorded in the background.
    const deadline = Date.now() + 3000;
    let shards = await directory.shardsOf("news");
    while (shards.includes("f") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      shards = await directory.shardsOf("news");
    }
    expect(shards).not.toContain("f");
  });
});

describe("history", () => {
  it("stamps broadcasts in the object's storage, and recovers from it in a fresh instance (after an eviction)", async () => {
    const keeper = await connect("room=history&user=keeper");
    const away = await connect("room=history&user=away");
    await keeper.request({ type: "subscribe", channel: "feed" });
    const subscribed = await away.request({ type: "subscribe", channel: "feed", id: 1 });
    expect(subscribed).toEqual({
      type: "subscribed",
      channel: "feed",
      offset: 0,
      epoch: expect.any(String),
      id: 1,
    });
    const { id } = (await away.request({ type: "action", channel: "whoami" })).data;
    // The client leaves the channel; the object keeps hearing it through its other subscriber.
    await away.request({ type: "unsubscribe", channel: "feed" });
    for (let n = 1; n <= 3; n++) keeper.send({ type: "action", channel: "post", data: { n } });
    // Each broadcast reaches the acting client before its action's answer.
    const answers: Frame[] = [];
    for (let i = 0; i < 6; i++) answers.push(await keeper.next());
    expect(answers.map((frame) => frame.type)).toEqual([
      "data",
      "action",
      "data",
      "action",
      "data",
      "action",
    ]);
    const frames = answers.filter((frame) => frame.type === "data");
    expect(frames.map((frame) => frame.offset)).toEqual([1, 2, 3]);
    // The stream was made by its first broadcast; subscribed gave an empty stream's position.
    expect(subscribed.epoch).toMatch(/^e-/);
    expect(frames[0]).toEqual({
      type: "data",
      channel: "feed",
      data: { n: expect.any(Number) },
      offset: 1,
      epoch: expect.stringMatching(/^[0-9a-f]{12}$/),
    });

    // A fresh instance of the object, as after an eviction: nothing in memory, the storage kept.
    await runInDurableObject(stubFor("history"), (_, state) => {
      const fresh = new SocketAPIObject(state, env);
      const ws = state
        .getWebSockets()
        .find((socket) => (socket.deserializeAttachment() as { i: string }).i === id);
      const since = { offset: 0, epoch: subscribed.epoch };
      fresh.webSocketMessage(
        ws as WebSocket,
        JSON.stringify({ type: "subscribe", channel: "feed", since, id: 2 }),
      );
    });
    expect(await away.next()).toEqual({
      type: "subscribed",
      channel: "feed",
      offset: 3,
      epoch: frames[0]?.epoch,
      recovered: true,
      id: 2,
    });
    const missed = [await away.next(), await away.next(), await away.next()];
    // The same broadcasts, in the same order, as the subscriber that stayed saw them.
    expect(missed).toEqual(frames);
    await away.expectNone();
  });

  it("writes nothing to the object's storage for 50 names subscribed to and left without a broadcast", async () => {
    const c = await connect("room=history-churn&user=churn");
    for (let i = 0; i < 50; i++) {
      const channel = `logs/${i}`;
      expect(await c.request({ type: "subscribe", channel })).toMatchObject({ offset: 0 });
      expect(await c.request({ type: "unsubscribe", channel })).toMatchObject({
        type: "unsubscribed",
      });
    }
    const streams = await runInDurableObject(stubFor("history-churn"), (_, state) =>
      state.storage.sql.exec("SELECT COUNT(*) AS n FROM socketapi_streams").one(),
    );
    // Before: a row per name (each with its epoch), never deleted but by the sweep.
    expect(streams).toEqual({ n: 0 });
  });

  it("gives a handler the channel's kept broadcasts from the object's storage (ctx.app.history)", async () => {
    const c = await connect("room=history-read&user=reader");
    expect((await c.request({ type: "action", channel: "recent" })).data).toEqual([]);
    await c.request({ type: "subscribe", channel: "feed" });
    for (let n = 1; n <= 3; n++) {
      c.send({ type: "action", channel: "post", data: { n } });
      await c.next();
      await c.next();
    }
    const recent = (await c.request({ type: "action", channel: "recent" })).data;
    expect(recent.map((entry: Frame) => [entry.data, entry.offset])).toEqual([
      [{ n: 2 }, 2],
      [{ n: 3 }, 3],
    ]);
  });

  it("keeps a stream within its history.maxBytes, dropping the oldest", async () => {
    const c = await connect("room=history-bytes&user=logger");
    await c.request({ type: "subscribe", channel: "logs/big" });
    for (let i = 0; i < 20; i++) {
      c.send({ type: "action", channel: "log", data: { topic: "big", line: "x".repeat(1000) } });
      expect(await c.next()).toMatchObject({ type: "data", offset: i + 1 });
      expect(await c.next()).toMatchObject({ type: "action" });
    }
    const kept = await runInDurableObject(stubFor("history-bytes"), (_, state) =>
      state.storage.sql
        .exec<{ rows: number; bytes: number }>(
          "SELECT COUNT(*) AS rows, SUM(length(CAST(frame AS BLOB))) AS bytes FROM socketapi_history WHERE channel = 'logs/big'",
        )
        .one(),
    );
    expect(kept.bytes).toBeLessThanOrEqual(4096);
    expect(kept.rows).toBe(3);
  });

  it("starts a stream idle past its ttl again under a new epoch, whether or not the sweep ran", async () => {
    const keeper = await connect("room=history-brief&user=keeper");
    await keeper.request({ type: "subscribe", channel: "brief" });
    keeper.send({ type: "action", channel: "post_brief", data: { n: 1 } });
    const first = await keeper.next();
    expect(first).toMatchObject({ type: "data", offset: 1 });
    expect(await keeper.next()).toMatchObject({ type: "action" });
    await new Promise((resolve) => setTimeout(resolve, 400));
    // Before: the object's sweep runs once a minute, and the read kept the old epoch.
    const back = await connect("room=history-brief&user=back");
    const again = await back.request({
      type: "subscribe",
      channel: "brief",
      since: { offset: 1, epoch: first.epoch },
    });
    expect(again).toMatchObject({ type: "subscribed", offset: 0, recovered: false });
    expect(again.epoch).not.toBe(first.epoch);
    keeper.send({ type: "action", channel: "post_brief", data: { n: 2 } });
    const next = await keeper.next();
    expect(next).toMatchObject({ type: "data", offset: 1 });
    expect(next.epoch).not.toBe(first.epoch);
  });

  it("drops a stream the object stops hearing (its last subscriber left, the directory routes): recovered: false", async () => {
    const only = await connect("room=history-gone&user=only");
    const subscribed = await only.request({ type: "subscribe", channel: "feed" });
    expect(await only.request({ type: "action", channel: "post", data: { n: 1 } })).toMatchObject({
      type: "data",
      offset: 1,
    });
    expect(await only.next()).toMatchObject({ type: "action", status: "completed" });
    await only.request({ type: "unsubscribe", channel: "feed" });
    const again = await only.request({
      type: "subscribe",
      channel: "feed",
      since: { offset: 1, epoch: subscribed.epoch },
    });
    expect(again).toMatchObject({ type: "subscribed", offset: 0, recovered: false });
    expect(again.epoch).not.toBe(subscribed.epoch);
  });
});

describe("presence", () => {
  it("is rebuilt after a wake: the members, and who listens, without a second join", async () => {
    const watcher = await connect("room=presence&user=watcher");
    expect(await watcher.request({ type: "subscribe", channel: "lobby", presence: true })).toEqual({
      type: "subscribed",
      channel: "lobby",
      members: [{ user: "watcher", info: { name: "watcher" } }],
      count: 1,
    });
    const ada = await connect("room=presence&user=ada");
    await ada.request({ type: "subscribe", channel: "lobby" });
    expect(await watcher.next()).toEqual({
      type: "join",
      channel: "lobby",
      user: "ada",
      info: { name: "ada" },
    });
    const { id: adaId } = (await ada.request({ type: "action", channel: "whoami" })).data;
    const { id: watcherId } = (await watcher.request({ type: "action", channel: "whoami" })).data;
    // A fresh instance, as after hibernation: presence comes back from the attachments.
    await runInDurableObject(stubFor("presence"), async (_, state) => {
      const fresh = new SocketAPIObject(state, env);
      await new Promise((resolve) => setTimeout(resolve, 10));
      const socketOf = (id: string) =>
        state
          .getWebSockets()
          .find((socket) => (socket.deserializeAttachment() as { i: string }).i === id);
      // Who is here, as the fresh instance knows it.
      fresh.webSocketMessage(
        socketOf(watcherId) as WebSocket,
        JSON.stringify({ type: "subscribe", channel: "lobby", presence: true, id: "again" }),
      );
      await new Promise((resolve) => setTimeout(resolve, 10));
      await fresh.webSocketClose(socketOf(adaId) as WebSocket, 1000, "bye");
    });
    expect(await watcher.next()).toEqual({
      type: "subscribed",
      channel: "lobby",
      // In the order the object restored its sockets.
      members: expect.arrayContaining([
        { user: "watcher", info: { name: "watcher" } },
        { user: "ada", info: { name: "ada" } },
      ]),
      count: 2,
      id: "again",
    });
    // The first frame after the wake is the leave: the rebuilt presence sent no join again.
    // (The instance the test replaced still sees the socket close and says leave once more:
    // two live instances of one object happen only in this test.)
    expect(await watcher.next()).toEqual({ type: "leave", channel: "lobby", user: "ada" });
  });
});

describe("presence across shards", () => {
  it("adds up the members of every shard: one join per user, counted from the Worker", async () => {
    const watcher = await connect("room=hall-1&user=watcher");
    expect(await watcher.request({ type: "subscribe", channel: "hall", presence: true })).toEqual({
      type: "subscribed",
      channel: "hall",
      members: [{ user: "watcher", info: { name: "watcher" } }],
      count: 1,
    });
    // Ada in another shard: the watcher hears her join.
    const ada = await connect("room=hall-2&user=ada");
    expect(await ada.request({ type: "subscribe", channel: "hall" })).toEqual({
      type: "subscribed",
      channel: "hall",
    });
    expect(await watcher.next()).toEqual({
      type: "join",
      channel: "hall",
      user: "ada",
      info: { name: "ada" },
    });
    // Ada again, on a third shard: the same member, no second join; she sees both.
    const adaAgain = await connect("room=hall-3&user=ada");
    const subscribed = await adaAgain.request({
      type: "subscribe",
      channel: "hall",
      presence: true,
    });
    expect(subscribed).toMatchObject({ type: "subscribed", channel: "hall", count: 2 });
    expect(subscribed.members).toEqual(
      expect.arrayContaining([
        { user: "watcher", info: { name: "watcher" } },
        { user: "ada", info: { name: "ada" } },
      ]),
    );
    await watcher.expectNone(200);
    const counted: Frame = await (
      await SELF.fetch("http://example.com/presence?channel=hall")
    ).json();
    expect(counted).toEqual({
      members: expect.arrayContaining([
        { user: "watcher", info: { name: "watcher" } },
        { user: "ada", info: { name: "ada" } },
      ]),
      count: { members: 2, connections: 3 },
    });
    // Her first connection goes: she is still here. Her last: she leaves, heard in both shards.
    ada.ws.close(1000, "bye");
    await watcher.expectNone(200);
    const bob = await connect("room=hall-3&user=bob");
    await bob.request({ type: "subscribe", channel: "hall" });
    expect(await watcher.next()).toMatchObject({ type: "join", user: "bob" });
    expect(await adaAgain.next()).toMatchObject({ type: "join", user: "bob" });
    watcher.ws.close(1000, "bye");
    expect(await adaAgain.next()).toEqual({ type: "leave", channel: "hall", user: "watcher" });
  });

  it("takes the members of a shard that lost its sockets without a close off at the roster's check", async () => {
    const watcher = await connect("room=check-1&user=watcher");
    await watcher.request({ type: "subscribe", channel: "hall", presence: true });
    // What a shard reset by a deploy leaves behind: its share, with no socket left there.
    const roster = env.SOCKETAPI.get(env.SOCKETAPI.idFromName("__socketapi_presence__:hall"));
    const rpc = roster as unknown as {
      presenceUpdate(update: Record<string, string | number>): Promise<boolean>;
    };
    const joinFrame = '{"type":"join","channel":"hall","user":"casper","info":{"name":"casper"}}';
    expect(
      await rpc.presenceUpdate({
        channel: "hall",
        shard: "gone",
        member: "casper",
        info: '{"name":"casper"}',
        connections: 1,
        frame: joinFrame,
        except: "",
      }),
    ).toBe(true);
    expect(await watcher.next()).toMatchObject({ type: "join", user: "casper" });
    // The roster's alarm asks every shard what it holds; "gone" holds nothing.
    expect(await runDurableObjectAlarm(roster)).toBe(true);
    expect(await watcher.next()).toEqual({ type: "leave", channel: "hall", user: "casper" });
    const counted: Frame = await (
      await SELF.fetch("http://example.com/presence?channel=hall")
    ).json();
    expect(counted.members).not.toContainEqual(expect.objectContaining({ user: "casper" }));
    // Members are left as they are, and the check comes back while there are some.
    expect(counted.members).toContainEqual({ user: "watcher", info: { name: "watcher" } });
    expect(await runInDurableObject(roster, (_, state) => state.storage.getAlarm())).not.toBeNull();
  });

  it("leaves no roster behind: one with no members deletes its storage and its alarm", async () => {
    const c = await connect("room=halls-churn&user=passer");
    for (let i = 0; i < 20; i++) {
      const channel = `halls/${i}`;
      expect(await c.request({ type: "subscribe", channel })).toMatchObject({ type: "subscribed" });
      expect(await c.request({ type: "unsubscribe", channel })).toMatchObject({
        type: "unsubscribed",
      });
    }
    // Each leave is told after the leave delay (1 s): wait until the last one has been.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    for (const i of [0, 7, 19]) {
      const roster = env.SOCKETAPI.get(
        env.SOCKETAPI.idFromName(`__socketapi_presence__:halls/${i}`),
      );
      const kept = await runInDurableObject(roster, async (_, state) => ({
        tables: state.storage.sql
          .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE name LIKE 'socketapi%'")
          .toArray(),
        alarm: await state.storage.getAlarm(),
      }));
      // Before: three tables and a check every 30 s, for every name ever joined.
      expect(kept).toEqual({ tables: [], alarm: null });
    }
    // A member again: the roster comes back as it was.
    const back = await connect("room=halls-churn&user=watcher");
    expect(
      await back.request({ type: "subscribe", channel: "halls/7", presence: true }),
    ).toMatchObject({
      type: "subscribed",
      members: [{ user: "watcher", info: "watcher" }],
      count: 1,
    });
  });
});

describe("metrics", () => {
  it("are recorded in the object, with OpenTelemetry's SDK inside workerd", async () => {
    const client = await connect("room=metrics");
    expect((await client.request({ type: "action", channel: "visit", id: 1 })).status).toBe(
      "completed",
    );
    expect((await client.request({ type: "action", channel: "nope", id: 2 })).code).toBe(
      "NOT_FOUND",
    );
    const { resourceMetrics } = await metricsReader.collect();
    const names = resourceMetrics.scopeMetrics.flatMap((scope) =>
      scope.metrics.map((metric) => metric.descriptor.name),
    );
    expect(names).toEqual(
      expect.arrayContaining([
        "socketapi.connections.opened",
        "socketapi.frames.received",
        "socketapi.errors",
        "socketapi.action.duration",
      ]),
    );
    const errors = resourceMetrics.scopeMetrics
      .flatMap((scope) => scope.metrics)
      .find((metric) => metric.descriptor.name === "socketapi.errors");
    expect(errors?.dataPoints).toContainEqual(
      expect.objectContaining({ attributes: { "error.type": "NOT_FOUND" } }),
    );
  });
});

describe("ping", () => {
  it("is answered by the runtime's auto-response, without the object's code", async () => {
    const client = await connect("room=ping");
    await client.request({ type: "action", channel: "visit" });
    client.ws.send('{"type":"ping"}');
    expect(await client.next()).toEqual({ type: "pong" });
    const answeredAt = await runInDurableObject(stubFor("ping"), (_, state) => {
      const [ws] = state.getWebSockets();
      return state.getWebSocketAutoResponseTimestamp(ws as WebSocket);
    });
    expect(answeredAt).toBeInstanceOf(Date);
  });

  it("sends a pong for a ping spelled differently, through the app", async () => {
    const client = await connect("room=ping2");
    expect(await client.request({ type: "ping", id: 1 })).toEqual({ type: "pong" });
    // The connection lives in its object: a handler there counts it (ctx.app).
    expect((await client.request({ type: "action", channel: "here" })).data).toEqual({
      connections: 1,
      subscribers: 0,
    });
  });
});

describe("Hono on Workers", () => {
  it("hands an upgrade on a Hono route to the Durable Object, next to Hono's other routes", async () => {
    expect(await (await SELF.fetch("http://example.com/hono/health")).json()).toEqual({ ok: true });
    const client = await connect("room=hono&user=hono", {}, "/hono/ws");
    expect((await client.request({ type: "action", channel: "visit" })).data).toEqual({
      user: "hono",
      visits: 1,
    });
    const sockets = await runInDurableObject(
      stubFor("hono"),
      (_, state) => state.getWebSockets().length,
    );
    expect(sockets).toBe(1);
    const refused = await SELF.fetch("http://example.com/hono/ws?token=bad", {
      headers: { upgrade: "websocket" },
    });
    expect(refused.status).toBe(401);
  });
});

describe("a misnamed binding", () => {
  it("answers 500 with the library's own message, and reports it", async () => {
    const errors: unknown[] = [];
    const other = new SocketAPI({ onError: (error) => errors.push(error) }).action("x", () => 1);
    const { worker: misnamed } = cloudflare(other, { binding: "NOPE" });
    const response = await misnamed.fetch(
      new Request("http://example.com/", { headers: { upgrade: "websocket" } }),
      env,
      createExecutionContext(),
    );
    expect(response.status).toBe(500);
    expect(await response.text()).toBe(
      "socketapi/cloudflare: no Durable Object binding named NOPE: name the binding of the SocketAPIObject class in wrangler.toml, or pass its name as `binding`.\n",
    );
    expect(errors).toEqual([expect.objectContaining({ name: "ConfigurationError" })]);
  });
});
