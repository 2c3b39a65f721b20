// The order in which broadcasts the broker failed reach the subscribers here: behind the
// earlier ones still in flight on their channel, within a bound in bytes.
import { describe, expect, it } from "vitest";
import { MAX_PLACES, MAX_WAITING_BYTES, UnstampedOrder } from "../src/hub/unstamped-order.ts";

function failed(delivered: string[], name: string, bytes = 10) {
  return {
    deliver: () => {
      delivered.push(name);
      return 1;
    },
    bytes,
  };
}

describe("UnstampedOrder", () => {
  it("delivers a failed broadcast at once when nothing is in flight before it", () => {
    const order = new UnstampedOrder();
    const delivered: string[] = [];
    const place = order.enter("feed");
    expect(order.settle("feed", place, failed(delivered, "a"))).toBe(1);
    expect(delivered).toEqual(["a"]);
  });

  it("holds a failed broadcast behind an earlier one in flight, then delivers both in order", () => {
    const order = new UnstampedOrder();
    const delivered: string[] = [];
    const first = order.enter("feed");
    const taken = order.enter("feed");
    const second = order.enter("feed");
    const other = order.enter("other");
    expect(order.settle("feed", second, failed(delivered, "second"))).toBe(0);
    expect(order.settle("feed", taken)).toBe(0);
    // Another channel does not wait for this one.
    expect(order.settle("other", other, failed(delivered, "other"))).toBe(1);
    expect(delivered).toEqual(["other"]);
    expect(order.settle("feed", first, failed(delivered, "first"))).toBe(1);
    expect(delivered).toEqual(["other", "first", "second"]);
    // Settled twice: nothing more.
    expect(order.settle("feed", first, failed(delivered, "again"))).toBe(0);
    expect(delivered).toHaveLength(3);
  });

  it("delivers at once, out of order, what would hold more than its bound", () => {
    const order = new UnstampedOrder();
    const delivered: string[] = [];
    const late = order.enter("feed");
    const big = order.enter("feed");
    const over = order.enter("feed");
    expect(order.settle("feed", big, failed(delivered, "big", MAX_WAITING_BYTES - 5))).toBe(0);
    expect(order.settle("feed", over, failed(delivered, "over", 10))).toBe(1);
    expect(delivered).toEqual(["over"]);
    order.settle("feed", late);
    expect(delivered).toEqual(["over", "big"]);
    // The bound is free again once delivered.
    const next = order.enter("feed");
    const behind = order.enter("feed");
    expect(order.settle("feed", behind, failed(delivered, "behind", MAX_WAITING_BYTES))).toBe(0);
    order.settle("feed", next);
    expect(delivered).toEqual(["over", "big", "behind"]);
  });

  it("waits no more for a broadcast that MAX_PLACES later ones have passed", () => {
    const order = new UnstampedOrder();
    const delivered: string[] = [];
    const stuck = order.enter("feed");
    const behind = order.enter("feed");
    order.settle("feed", behind, failed(delivered, "behind"));
    for (let i = 0; i < MAX_PLACES - 2; i++) order.settle("feed", order.enter("feed"));
    expect(delivered).toEqual([]);
    // One more: the one that never answered is let go, and what waited behind it delivered.
    const last = order.enter("feed");
    expect(delivered).toEqual(["behind"]);
    expect(order.settle("feed", stuck, failed(delivered, "stuck"))).toBe(0);
    expect(order.settle("feed", last, failed(delivered, "last"))).toBe(1);
    expect(delivered).toEqual(["behind", "last"]);
  });
});
