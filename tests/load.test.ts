// Load, churn and a slow consumer against a real Node server in its own process. Bounded in
// count and time; the figures are printed for the record, never asserted as timings.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type ServerProcess, startLoadServer } from "./helpers/server-process.ts";
import { openClient, type WsClient } from "./helpers/ws-client.ts";

let server: ServerProcess;
let observer: WsClient;
// biome-ignore lint/suspicious/noExplicitAny: the server's stats, checked by hand.
const stats = async (): Promise<any> =>
  (await observer.request({ type: "action", channel: "_stats" })).data;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

beforeAll(async () => {
  server = await startLoadServer();
  observer = await openClient(server.url);
}, 30_000);

afterAll(async () => {
  observer?.ws.terminate();
  await server?.stop();
});

/** Opens `count` raw connections, `parallel` at a time. */
async function openMany(count: number, parallel = 100): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < count; i += parallel) {
    const batch = Array.from(
      { length: Math.min(parallel, count - i) },
      () => new WebSocket(server.url),
    );
    await Promise.all(
      batch.map(
        (ws) => new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject)),
      ),
    );
    sockets.push(...batch);
  }
  return sockets;
}

async function closeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise((resolve) =>
          ws.readyState === WebSocket.CLOSED ? resolve(null) : ws.once("close", resolve).close(),
        ),
    ),
  );
}

describe("load", () => {
  it("answers 1,000 connections running 100 actions each: every answer once, with its id", {
    timeout: 120_000,
  }, async () => {
    const sockets = await openMany(1000);
    const started = performance.now();
    const results = await Promise.all(
      sockets.map(
        (ws, c) =>
          new Promise<{ answered: number; wrong: number; duplicates: number }>((resolve) => {
            const answered = new Set<number>();
            let wrong = 0;
            let duplicates = 0;
            ws.on("message", (raw) => {
              const frame = JSON.parse(raw.toString());
              if (frame.data !== c + frame.id) wrong++;
              if (answered.has(frame.id)) duplicates++;
              answered.add(frame.id);
              if (answered.size === 100) resolve({ answered: answered.size, wrong, duplicates });
            });
            for (let id = 0; id < 100; id++) {
              ws.send(
                JSON.stringify({
                  type: "action",
                  channel: "add_numbers",
                  data: { a: c, b: id },
                  id,
                }),
              );
            }
          }),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    expect(results.every((r) => r.answered === 100 && r.wrong === 0 && r.duplicates === 0)).toBe(
      true,
    );
    console.log(
      `load: 100,000 actions over 1,000 connections answered in ${seconds.toFixed(2)} s (${Math.round(100_000 / seconds)}/s)`,
    );
    await closeAll(sockets);
  });

  it("delivers 1,000 broadcasts to 1,000 subscribers: all of them, in order", {
    timeout: 120_000,
  }, async () => {
    const sockets = await openMany(1000);
    const progress = sockets.map(() => ({ next: 0, outOfOrder: 0 }));
    await Promise.all(
      sockets.map(
        (ws) =>
          new Promise((resolve) => {
            ws.once("message", resolve);
            ws.send(JSON.stringify({ type: "subscribe", channel: "load" }));
          }),
      ),
    );
    expect((await stats()).load).toBe(1000);
    const done = Promise.all(
      sockets.map(
        (ws, i) =>
          new Promise<void>((resolve) => {
            const state = progress[i] as { next: number; outOfOrder: number };
            ws.on("message", (raw) => {
              const frame = JSON.parse(raw.toString());
              if (frame.type !== "data") return;
              if (frame.data !== state.next) state.outOfOrder++;
              state.next = frame.data + 1;
              if (state.next === 1000) resolve();
            });
          }),
      ),
    );
    const started = performance.now();
    const sent = await observer.request(
      { type: "action", channel: "broadcast_many", data: { count: 1000 } },
      60_000,
    );
    await done;
    const seconds = (performance.now() - started) / 1000;
    expect(sent.data).toBe(1_000_000);
    expect(progress.every((p) => p.next === 1000 && p.outOfOrder === 0)).toBe(true);
    console.log(
      `load: 1,000,000 deliveries (1,000 broadcasts x 1,000 subscribers) in ${seconds.toFixed(2)} s`,
    );
    await closeAll(sockets);
  });
});

describe("churn", () => {
  it("returns the subscriber index to empty after 10,000 connect-subscribe-disconnect cycles, heap bounded", {
    timeout: 180_000,
  }, async () => {
    const cycle = async (n: number) => {
      const ws = new WebSocket(server.url);
      await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
      await new Promise((resolve) => {
        ws.once("message", resolve);
        ws.send(JSON.stringify({ type: "subscribe", channel: `rooms/${n % 500}` }));
      });
      await new Promise((resolve) => ws.once("close", resolve).close());
    };
    const run = async (count: number, offset: number) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          while (next < count) await cycle(offset + next++);
        }),
      );
    };
    const settle = async () => {
      const deadline = Date.now() + 10_000;
      let now = await stats();
      while ((now.connections !== 1 || now.channels !== 0) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        now = await stats();
      }
      return now;
    };
    await run(1000, 0); // warm-up: code compiled, pools filled
    const before = await settle();
    const started = performance.now();
    await run(10_000, 1000);
    const seconds = (performance.now() - started) / 1000;
    const after = await settle();
    expect(after.connections).toBe(1); // the observer
    expect(after.channels).toBe(0);
    const growth = after.heapUsed - before.heapUsed;
    console.log(
      `churn: 10,000 cycles in ${seconds.toFixed(1)} s; heap after GC ${mib(before.heapUsed)} -> ${mib(after.heapUsed)} (${growth >= 0 ? "+" : ""}${mib(growth)})`,
    );
    expect(growth).toBeLessThan(8 * 1024 * 1024);
  });
});

describe("slow consumer", () => {
  it("cuts off a client that never reads while a normal subscriber gets everything; memory stays bounded", {
    timeout: 60_000,
  }, async () => {
    const slow = await openClient(server.url);
    const normal = await openClient(server.url);
    await slow.request({ type: "subscribe", channel: "load" });
    await normal.request({ type: "subscribe", channel: "load" });
    // The slow client stops reading from its socket.
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const before = await stats();
    const broadcastRound = async (): Promise<number> =>
      (
        await observer.request({
          type: "action",
          channel: "broadcast_many",
          data: { count: 64, size: 8192 },
        })
      ).data as number;
    let rounds = 0;
    let delivered = 0;
    // 64 broadcasts of 8 KiB (512 KiB) a round, under the server's 1 MiB send-buffer limit.
    while ((await stats()).load === 2 && rounds < 100) {
      rounds++;
      delivered += await broadcastRound();
    }
    expect((await stats()).load).toBe(1);
    // A few more rounds: the normal subscriber goes on at full rate.
    for (let i = 0; i < 5; i++) {
      rounds++;
      delivered += await broadcastRound();
    }
    const expected = rounds * 64;
    const deadline = Date.now() + 10_000;
    const dataFrames = () =>
      normal.frames.filter((frame) => frame.startsWith('{"type":"data"')).length;
    while (dataFrames() < expected && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(dataFrames()).toBe(expected);
    // The slow one is dropped a second after its 1013; what it held is freed.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const after = await stats();
    expect(after.connections).toBe(before.connections - 1);
    console.log(
      `slow consumer: cut off after ${rounds - 5} rounds of 512 KiB; ${delivered} frames delivered; heap after GC ${mib(before.heapUsed)} -> ${mib(after.heapUsed)}`,
    );
    expect(after.heapUsed - before.heapUsed).toBeLessThan(8 * 1024 * 1024);
    normal.ws.terminate();
    slow.ws.terminate();
  });
});
