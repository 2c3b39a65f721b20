// The order of a fallback session's POSTs: each fed once, in the order of its number; what
// waits for a gap is bounded in count and bytes and given up after POST_GAP_TIMEOUT.
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  MAX_HELD_POSTS,
  OrderedPosts,
  POST_GAP_TIMEOUT,
} from "../src/serve/fallback/ordered-posts.ts";

afterEach(() => {
  vi.useRealTimers();
});

describe("OrderedPosts", () => {
  it("feeds in the order of the numbers, holds what comes early, drops what came already", () => {
    const fed: string[] = [];
    const posts = new OrderedPosts(
      (body) => fed.push(body),
      1024,
      () => {},
    );
    expect(posts.take(2, "c")).toBe("held");
    expect(posts.take(1, "b")).toBe("held");
    expect(posts.take(0, "a")).toBe("fed");
    expect(fed).toEqual(["a", "b", "c"]);
    expect(posts.take(1, "b again")).toBe("duplicate");
    expect(posts.take(3, "d")).toBe("fed");
    expect(fed).toEqual(["a", "b", "c", "d"]);
    expect(posts.take(-1, "x")).toBe("refused");
    expect(posts.take(1.5, "x")).toBe("refused");
  });

  it(`holds at most ${MAX_HELD_POSTS} POSTs and maxHeldBytes, and refuses one too far ahead`, () => {
    const posts = new OrderedPosts(
      () => {},
      10,
      () => {},
    );
    expect(posts.take(MAX_HELD_POSTS + 1, "x")).toBe("refused");
    expect(posts.take(1, "12345")).toBe("held");
    expect(posts.take(2, "12345")).toBe("held");
    // 10 bytes held: one more byte is refused.
    expect(posts.take(3, "1")).toBe("refused");
    const many = new OrderedPosts(
      () => {},
      1 << 20,
      () => {},
    );
    for (let seq = 1; seq <= MAX_HELD_POSTS; seq++) expect(many.take(seq, "x")).toBe("held");
    expect(many.take(MAX_HELD_POSTS + 1, "x")).toBe("refused");
  });

  it(`gives a gap up after ${POST_GAP_TIMEOUT} ms, and not when it fills in time`, () => {
    vi.useFakeTimers();
    const gaveUp = vi.fn();
    const filled = new OrderedPosts(() => {}, 1024, gaveUp);
    filled.take(1, "b");
    vi.advanceTimersByTime(POST_GAP_TIMEOUT - 1);
    filled.take(0, "a");
    vi.advanceTimersByTime(POST_GAP_TIMEOUT);
    expect(gaveUp).not.toHaveBeenCalled();
    const open = new OrderedPosts(() => {}, 1024, gaveUp);
    open.take(1, "b");
    vi.advanceTimersByTime(POST_GAP_TIMEOUT);
    expect(gaveUp).toHaveBeenCalledOnce();
  });
});
