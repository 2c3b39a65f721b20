// What an instance's subscribers missed while its relay could not deliver to them, sent
// once it subscribed again: from the shared history, then the live broadcasts held back
// meanwhile, each once, in offset order; a new epoch gives what it kept, and says what
// could not be sent.
import { describe, expect, it } from "vitest";
import { stampedFrame } from "../src/adapter.ts";
import { CatchUp, type CatchUpPlace, MAX_HELD_BYTES } from "../src/hub/catch-up.ts";
import type { Recovery, SharedHistoryStore, StreamPosition } from "../src/index.ts";

const data = (seq: number, offset: number, epoch = "e1") =>
  stampedFrame(`{"type":"data","channel":"c","data":${seq}}`, offset, epoch);

/** A place whose shared store answers recoveries with `answers`, in turn. */
function place(heard: StreamPosition, answers: Recovery[]) {
  const delivered: string[] = [];
  const reported: string[] = [];
  const asked: (StreamPosition | undefined)[] = [];
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const store: SharedHistoryStore = {
    shared: true,
    publish: async () => 0,
    async recover(_channel, since) {
      asked.push(since);
      await gate;
      return answers.shift() as Recovery;
    },
  };
  const options = { size: 100, ttl: 60_000 };
  const at: CatchUpPlace = {
    heard: () => [["c", heard]],
    of: () => ({ options, store }),
    deliver: (_channel, frame) => delivered.push(frame),
    report: (error) => reported.push((error as Error).message),
  };
  return { at, delivered, reported, asked, release };
}

describe("a catch-up after the relay subscribed again", () => {
  it("sends what the stream kept after the last broadcast heard, then what came meanwhile, once each", async () => {
    const catchUp = new CatchUp();
    const { at, delivered, reported, asked, release } = place({ offset: 3, epoch: "e1" }, [
      {
        position: { offset: 6, epoch: "e1" },
        recovered: true,
        frames: [data(4, 4), data(5, 5), data(6, 6)],
      },
    ]);
    expect(catchUp.hold("c", data(9, 9), undefined)).toBe(false);
    const running = catchUp.run(at);
    // Live broadcasts that came while it reads: held, one of them also in the stream.
    expect(catchUp.hold("c", data(6, 6), undefined)).toBe(true);
    expect(catchUp.hold("c", data(7, 7), undefined)).toBe(true);
    expect(catchUp.hold("other", data(1, 1), undefined)).toBe(false);
    release();
    await running;
    expect(asked).toEqual([{ offset: 3, epoch: "e1" }]);
    expect(delivered).toEqual([data(4, 4), data(5, 5), data(6, 6), data(7, 7)]);
    expect(reported).toEqual([]);
    // Done: nothing is held any more.
    expect(catchUp.hold("c", data(8, 8), undefined)).toBe(false);
  });

  it("gives what a new epoch kept when the stream started again, and says the old one's tail is lost", async () => {
    const catchUp = new CatchUp();
    const { at, delivered, reported, asked, release } = place({ offset: 3, epoch: "e1" }, [
      { position: { offset: 2, epoch: "e2" }, recovered: false, frames: [] },
      {
        position: { offset: 2, epoch: "e2" },
        recovered: true,
        frames: [data(10, 1, "e2"), data(11, 2, "e2")],
      },
    ]);
    const running = catchUp.run(at);
    expect(catchUp.hold("c", data(11, 2, "e2"), undefined)).toBe(true);
    expect(catchUp.hold("c", data(12, 3, "e2"), undefined)).toBe(true);
    release();
    await running;
    expect(asked).toEqual([
      { offset: 3, epoch: "e1" },
      { offset: 0, epoch: "e2" },
    ]);
    expect(delivered).toEqual([data(10, 1, "e2"), data(11, 2, "e2"), data(12, 3, "e2")]);
    expect(reported).toEqual([expect.stringContaining("started a new epoch")]);
  });

  it("says so, and sends only what came meanwhile, when the stream no longer reaches back", async () => {
    const catchUp = new CatchUp();
    const { at, delivered, reported, release } = place({ offset: 3, epoch: "e1" }, [
      { position: { offset: 500, epoch: "e1" }, recovered: false, frames: [] },
    ]);
    const running = catchUp.run(at);
    expect(catchUp.hold("c", data(501, 501), undefined)).toBe(true);
    release();
    await running;
    expect(delivered).toEqual([data(501, 501)]);
    expect(reported).toEqual([expect.stringContaining("more than its history keeps")]);
  });

  it(`holds back at most ${MAX_HELD_BYTES} bytes: past them, live broadcasts go on and the catch-up's are not sent`, async () => {
    const catchUp = new CatchUp();
    const { at, delivered, reported, release } = place({ offset: 3, epoch: "e1" }, [
      { position: { offset: 4, epoch: "e1" }, recovered: true, frames: [data(4, 4)] },
    ]);
    const running = catchUp.run(at);
    const big = data(5, 5).replace('"data":5', `"data":"${"x".repeat(MAX_HELD_BYTES)}"`);
    expect(catchUp.hold("c", data(5, 5), undefined)).toBe(true);
    // Past the bound: what was held goes at once, before the frame its caller now sends.
    expect(catchUp.hold("c", big, undefined)).toBe(false);
    expect(delivered).toEqual([data(5, 5)]);
    expect(catchUp.hold("c", data(6, 6), undefined)).toBe(false);
    release();
    await running;
    // What the stream kept is not sent.
    expect(delivered).toEqual([data(5, 5)]);
    expect(reported).toEqual([expect.stringContaining("were not sent")]);
  });
});
