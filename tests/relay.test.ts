// The relay seam: a hub carries broadcasts to the app's other instances through its relay,
// which hears only the channels its instance has subscribers of.
import * as v from "valibot";
import { describe, expect, it, vi } from "vitest";
import { hubOf } from "../src/adapter.ts";
import { type Relay, SocketAPI } from "../src/index.ts";
import { createTestClient } from "../src/testing.ts";

/** A relay that records what it was asked. */
interface TestRelay extends Relay {
  readonly name: string;
  readonly joined: Set<string>;
  readonly calls: string[];
  readonly received: string[];
}

/** A bus between instances in one process: each relay made by it reaches the others. */
function bus(): (name: string) => TestRelay {
  const relays: TestRelay[] = [];
  const receivers = new Map<TestRelay, (channel: string, frame: string) => void>();
  return (name) => {
    const me: TestRelay = {
      name,
      joined: new Set(),
      calls: [],
      received: [],
      open(receive) {
        me.calls.push("open");
        receivers.set(me, receive);
      },
      join(channel) {
        me.calls.push(`join ${channel}`);
        me.joined.add(channel);
      },
      leave(channel) {
        me.calls.push(`leave ${channel}`);
        me.joined.delete(channel);
      },
      publish(channel, frame) {
        me.calls.push(`publish ${channel}`);
        let reached = 0;
        for (const other of relays) {
          if (other === me || !other.joined.has(channel)) continue;
          other.received.push(channel);
          receivers.get(other)?.(channel, frame);
          reached++;
        }
        return reached;
      },
      async close() {
        me.calls.push("close");
      },
    };
    relays.push(me);
    return me;
  };
}

function chatApp(relay: Relay, onError = vi.fn()) {
  return new SocketAPI({ relay, onError })
    .channel(
      "rooms/{room}",
      { params: v.object({ room: v.string(), text: v.optional(v.string(), "") }) },
      (p) => p,
    )
    .action("say", { input: v.object({ room: v.string(), text: v.string() }) }, (input, ctx) =>
      ctx.channels["rooms/{room}"](input),
    );
}

describe("a relay between instances", () => {
  it("carries a broadcast to the instances with subscribers, joined on the first and left with the last", async () => {
    const relay = bus();
    const [a, b, c] = [relay("a"), relay("b"), relay("c")];
    const [appA, appB, appC] = [chatApp(a), chatApp(b), chatApp(c)];
    const inB = await createTestClient(appB);
    const alsoInB = await createTestClient(appB);
    const inC = await createTestClient(appC);
    await inB.request({ type: "subscribe", channel: "rooms/1" });
    await alsoInB.request({ type: "subscribe", channel: "rooms/1" });
    await inC.request({ type: "subscribe", channel: "rooms/2" });
    expect(b.calls).toEqual(["open", "join rooms/1"]);
    expect(c.calls).toEqual(["open", "join rooms/2"]);

    expect(await appA.channels["rooms/{room}"]({ room: "1", text: "hi" })).toBe(1);
    for (const client of [inB, alsoInB]) {
      expect(await client.next()).toEqual({
        type: "data",
        channel: "rooms/1",
        data: { room: "1", text: "hi" },
      });
    }
    // C joined only rooms/2: it never hears rooms/1.
    expect(c.received).toEqual([]);
    await inC.expectNone();

    await inB.request({ type: "unsubscribe", channel: "rooms/1" });
    expect(b.calls.at(-1)).toBe("join rooms/1");
    alsoInB.disconnect();
    await vi.waitFor(() => expect(b.calls.at(-1)).toBe("leave rooms/1"));
    await appA.channels["rooms/{room}"]({ room: "1", text: "nobody" });
    expect(b.received).toEqual(["rooms/1"]);
  });

  it("delivers locally before the relay, so the acting client gets its broadcast before its completed", async () => {
    const relay = bus();
    const app = chatApp(relay("only"));
    const client = await createTestClient(app);
    await client.request({ type: "subscribe", channel: "rooms/9" });
    client.send({ type: "action", channel: "say", data: { room: "9", text: "x" }, id: 1 });
    expect((await client.next()).type).toBe("data");
    expect(await client.next()).toMatchObject({ status: "completed", id: 1, data: 1 });
  });

  it("keeps local broadcasts and subscribes working when the relay fails, and reports it", async () => {
    const onError = vi.fn();
    const broken: Relay = {
      open() {},
      join: async () => {
        throw new Error("broker down");
      },
      leave() {
        throw new Error("broker down");
      },
      publish() {
        throw new Error("broker down");
      },
      async close() {},
    };
    const app = chatApp(broken, onError);
    const client = await createTestClient(app);
    expect(await client.request({ type: "subscribe", channel: "rooms/3" })).toMatchObject({
      type: "subscribed",
    });
    expect(await app.channels["rooms/{room}"]({ room: "3", text: "local" })).toBe(1);
    expect((await client.next()).data).toEqual({ room: "3", text: "local" });
    await client.request({ type: "unsubscribe", channel: "rooms/3" });
    expect(onError.mock.calls.map(([error, info]) => [error.message, info.phase])).toEqual([
      ["broker down", "relay"],
      ["broker down", "relay"],
      ["broker down", "relay"],
    ]);
  });

  it("says once that a relay could not open, and serves locally: ready() rejects with why", async () => {
    const onError = vi.fn();
    const unreachable: Relay = {
      open: async () => {
        throw new Error("cannot connect to Fake at fake://nowhere");
      },
      join() {},
      leave() {},
      publish: () => undefined,
      async close() {},
    };
    const app = chatApp(unreachable, onError);
    await expect(app.ready()).rejects.toThrow("cannot connect to Fake at fake://nowhere");
    const client = await createTestClient(app);
    await client.request({ type: "subscribe", channel: "rooms/4" });
    for (let i = 0; i < 5; i++) {
      expect(await app.channels["rooms/{room}"]({ room: "4", text: `${i}` })).toBe(1);
    }
    expect((await client.next()).data).toEqual({ room: "4", text: "0" });
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError.mock.calls[0]?.[1]).toMatchObject({ phase: "relay" });
  });

  it("is never replaced: a second relay is an error, not a silent swap", () => {
    const relay = bus();
    const app = chatApp(relay("mine"));
    expect(() => hubOf(app).useRelay(relay("theirs"))).toThrow(/already has a relay/);
    expect(hubOf(app).relay).toMatchObject({ name: "mine" });
  });
});
