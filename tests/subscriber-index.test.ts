// The local index of who is subscribed here, with and without a runtime's native delivery
// (Bun's topics): the same counts, the same first and last, the same frames.
import { describe, expect, it } from "vitest";
import type { NativeDelivery, Subscriber } from "../src/adapter.ts";
import { SubscriberIndex } from "../src/hub/subscriber-index.ts";

/** A subscriber that records what it received, and may fail its sends. */
function subscriber(name: string, native: boolean) {
  const me = {
    name,
    native,
    received: [] as string[],
    failing: false,
    dropped: 0,
    deliver(frame: string) {
      if (me.failing) return false;
      me.received.push(frame);
      return true;
    },
    dropAfterFailedDelivery() {
      me.dropped++;
    },
  };
  return me;
}
type TestSubscriber = ReturnType<typeof subscriber>;

/** A runtime's topics: it takes only the subscribers marked native. */
function topics(): NativeDelivery & { readonly members: Map<string, Set<TestSubscriber>> } {
  const members = new Map<string, Set<TestSubscriber>>();
  return {
    members,
    join(channel: string, s: Subscriber) {
      if (!(s as TestSubscriber).native) return false;
      if (!members.has(channel)) members.set(channel, new Set());
      members.get(channel)?.add(s as TestSubscriber);
      return true;
    },
    leave(channel: string, s: Subscriber) {
      members.get(channel)?.delete(s as TestSubscriber);
    },
    publish(channel: string, frame: string) {
      const on = members.get(channel) ?? new Set();
      for (const s of on) s.received.push(`native:${frame}`);
      return on.size;
    },
    publishExcept(channel: string, frame: string, excluded: Subscriber) {
      let reached = 0;
      for (const s of members.get(channel) ?? []) {
        if (s === excluded) continue;
        s.received.push(`native:${frame}`);
        reached++;
      }
      return reached;
    },
  };
}

describe("the subscriber index", () => {
  it("delivers to every subscriber but one, looped and native", () => {
    const index = new SubscriberIndex();
    index.useNativeDelivery(topics());
    const [a, b, c, d] = [
      subscriber("a", true),
      subscriber("b", true),
      subscriber("c", false),
      subscriber("d", false),
    ];
    for (const s of [a, b, c, d]) index.add("room", s);
    expect(index.deliverExcept("room", "1", a)).toBe(3);
    expect(index.deliverExcept("room", "2", c)).toBe(3);
    expect([a.received, b.received, c.received, d.received]).toEqual([
      ["native:2"],
      ["native:1", "native:2"],
      ["1"],
      ["1", "2"],
    ]);
  });

  it("counts, delivers and tells the first and last subscriber without a native delivery", () => {
    const index = new SubscriberIndex();
    const [a, b] = [subscriber("a", true), subscriber("b", true)];
    expect(index.add("room", a)).toBe(true);
    expect(index.add("room", b)).toBe(false);
    expect(index.size("room")).toBe(2);
    expect(index.deliver("room", "1")).toBe(2);
    expect([a.received, b.received]).toEqual([["1"], ["1"]]);
    expect(index.remove("room", a)).toBe(false);
    expect(index.remove("room", a)).toBe(false);
    expect(index.remove("room", b)).toBe(true);
    expect(index.has("room")).toBe(false);
    expect(index.deliver("room", "2")).toBe(0);
  });

  it("delivers through the runtime to its sockets and in a loop to the others, counting both", () => {
    const index = new SubscriberIndex();
    const native = topics();
    const before = subscriber("before", true);
    index.add("room", before);
    index.useNativeDelivery(native);
    const [bun, memory] = [subscriber("bun", true), subscriber("memory", false)];
    expect(index.add("room", bun)).toBe(false);
    expect(index.add("room", memory)).toBe(false);
    expect(index.size("room")).toBe(3);
    expect(index.deliver("room", "1")).toBe(3);
    // Added before the native delivery: still sent to in the loop.
    expect(before.received).toEqual(["1"]);
    expect(bun.received).toEqual(["native:1"]);
    expect(memory.received).toEqual(["1"]);

    expect(index.remove("room", bun)).toBe(false);
    expect(native.members.get("room")?.size).toBe(0);
    expect(index.remove("room", memory)).toBe(false);
    expect(index.deliver("room", "2")).toBe(1);
    expect(index.remove("room", before)).toBe(true);
    expect(index.size()).toBe(0);
  });

  it("a channel with only native subscribers is one publish, and its last one leaves it", () => {
    const index = new SubscriberIndex();
    const native = topics();
    index.useNativeDelivery(native);
    const subscribers = [1, 2, 3].map((n) => subscriber(`s${n}`, true));
    expect(subscribers.map((s) => index.add("room", s))).toEqual([true, false, false]);
    expect(index.deliver("room", "x")).toBe(3);
    for (const s of subscribers.slice(0, 2)) expect(index.remove("room", s)).toBe(false);
    expect(index.remove("room", subscribers[2] as TestSubscriber)).toBe(true);
    expect(index.has("room")).toBe(false);
  });

  it("drops subscribers whose send fails, after the others were served", () => {
    const index = new SubscriberIndex();
    const [a, b, c] = [subscriber("a", false), subscriber("b", false), subscriber("c", false)];
    for (const s of [a, b, c]) index.add("room", s);
    b.failing = true;
    expect(index.deliver("room", "1")).toBe(2);
    expect([a.received, c.received, b.dropped]).toEqual([["1"], ["1"], 1]);
  });
});
