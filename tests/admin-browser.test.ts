// The dashboard in Chromium (playwright-core), against two instances over Redis under a
// small load: the page lists both, its numbers are what the test sent, a disconnect from
// the page closes that client (on this instance, and a user's on the other), a test
// broadcast reaches a subscriber; no console error, no request but the page's own.
// It writes docs/dashboard.png.
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import * as v from "valibot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serve } from "../adapters/node.ts";
import { redisRelay } from "../relays/redis.ts";
import { SocketAPI } from "../src/index.ts";
import { type Broker, killAll, startRedis } from "./helpers/brokers.ts";
import { CHROMIUM_ARGS, ensureChromium } from "./helpers/chromium.ts";
import { root } from "./helpers/server-process.ts";
import { WsClient } from "./helpers/ws-client.ts";

const executablePath = ensureChromium();
const TOKEN = "browser-dashboard-token-42";

function makeApp(url: string) {
  return new SocketAPI<{ user?: string }>({
    relay: redisRelay(url),
    userId: (connection) => connection.state.user,
    onConnect: (request) => {
      const user = new URL(request.url).searchParams.get("user");
      return user ? { user } : {};
    },
  })
    .action("add", { input: v.object({ a: v.number(), b: v.number() }) }, ({ a, b }) => a + b)
    .action("search", { input: v.object({ q: v.string() }) }, async ({ q }) => {
      await new Promise((resolve) => setTimeout(resolve, 5 + (q.length % 10)));
      return [q];
    })
    .channel("rooms/{room}", { params: v.object({ room: v.string() }) }, () => ({}))
    .channel("news", () => ({}))
    .channel("lobby", { presence: () => ({}) }, () => null);
}

describe.skipIf(!executablePath)(
  "the dashboard in Chromium (skipped: no chromium, and no root to install it)",
  () => {
    let redis: Broker;
    let a: Awaited<ReturnType<typeof serve>>;
    let b: Awaited<ReturnType<typeof serve>>;
    let browser: Browser;
    let page: Page;
    const clients: WsClient[] = [];
    const problems: string[] = [];
    const requests: string[] = [];

    const connect = async (server: { port: number }, user: string): Promise<WsClient> => {
      const made = new WsClient(`ws://127.0.0.1:${server.port}/?user=${user}`);
      clients.push(made);
      await made.opened;
      return made;
    };
    /** A table's cell: the row named `key`, column `column` (from 1). */
    const cell = (table: string, key: string, column: number) =>
      page.locator(`#${table} tr[data-key="${key}"] td:nth-child(${column})`);

    beforeAll(async () => {
      redis = await startRedis();
      a = await serve(makeApp(redis.url), { port: 0, admin: { token: TOKEN } });
      b = await serve(makeApp(redis.url), { port: 0, admin: { token: TOKEN } });
      browser = await chromium.launch({
        executablePath: executablePath as string,
        args: CHROMIUM_ARGS,
      });
      page = await browser.newPage({ viewport: { width: 1280, height: 1300 } });
      page.on("pageerror", (error) => problems.push(error.message));
      page.on("console", (message) => {
        if (message.type() === "error") problems.push(message.text());
      });
      page.on("request", (request) => requests.push(request.url()));
      page.on("websocket", (socket) => requests.push(socket.url()));
    }, 60_000);

    afterAll(async () => {
      for (const made of clients) made.ws.terminate();
      await browser?.close();
      await a?.close({ timeout: 500 });
      await b?.close({ timeout: 500 });
      await killAll([redis]);
    });

    it("signs in, lists both instances, and shows what the test sent", async () => {
      await page.goto(`http://127.0.0.1:${a.port}/admin?token=${TOKEN}`);
      await page.locator("#status", { hasText: "live" }).waitFor({ timeout: 10_000 });
      // The token left the address bar with the redirect.
      expect(page.url()).toBe(`http://127.0.0.1:${a.port}/admin`);
      await page.locator("#instances tbody tr[data-key]").nth(1).waitFor({ timeout: 10_000 });
      expect(await page.locator("#instances tbody tr[data-key]").count()).toBe(2);
      await expect.poll(() => page.locator("#instances").textContent()).toContain("(this page)");

      const ada = await connect(a, "ada");
      const bob = await connect(b, "bob");
      const carol = await connect(b, "carol");
      carol.send({ type: "subscribe", channel: "rooms/7", id: 1 });
      await carol.take((frame) => frame.type === "subscribed");
      // 60 adds on each instance, 4 of them invalid; 12 searches on A.
      for (let i = 0; i < 60; i++) {
        ada.send({
          type: "action",
          channel: "add",
          id: i + 1,
          data: i < 4 ? { a: "x" } : { a: i, b: 1 },
        });
        bob.send({ type: "action", channel: "add", id: i + 1, data: { a: i, b: 2 } });
      }
      for (let i = 0; i < 12; i++)
        ada.send({ type: "action", channel: "search", id: 100 + i, data: { q: `q${i}` } });
      await ada.take((frame) => frame.id === 111, 5000);
      await bob.take((frame) => frame.id === 60, 5000);

      await expect
        .poll(() => cell("actions", "add", 3).textContent(), { timeout: 10_000 })
        .toBe("120");
      await expect
        .poll(() => cell("actions", "search", 3).textContent(), { timeout: 10_000 })
        .toBe("12");
      expect(await cell("actions", "add", 4).textContent()).toBe("4");
      await expect.poll(() => cell("errors", "INVALID_PARAMS", 2).textContent()).toBe("4");
      expect(await cell("actions", "search", 5).textContent()).toMatch(/^\d+(\.\d+)? (ms|µs)$/);
      expect(await cell("actions", "search", 6).textContent()).toMatch(/^\d+(\.\d+)? (ms|µs)$/);
      await expect.poll(() => page.locator("#connections").textContent()).toBe("3");
      await expect.poll(() => cell("templates", "rooms/{room}", 3).textContent()).toBe("1");
    }, 40_000);

    it("disconnects a connection picked from the list, and a user on the other instance, after a confirmation", async () => {
      const ada = clients[0] as WsClient;
      const bob = clients[1] as WsClient;
      await page.locator("#filter").fill("ada");
      await page.locator("#list").click();
      const row = page.locator("#connection-list tbody tr[data-key]");
      await row.first().waitFor();
      expect(await row.count()).toBe(1);
      await row.first().getByRole("button", { name: "Disconnect" }).click();
      // Nothing happens before the confirmation.
      await expect
        .poll(() => page.locator("#confirm").textContent())
        .toContain("Disconnect connection");
      expect(ada.ws.readyState).toBe(ada.ws.OPEN);
      await page.locator("#confirm-yes").click();
      expect(await ada.closed).toEqual({ code: 1008, reason: "Disconnected by an operator" });

      await page.locator("#user").fill("bob");
      await page.locator("#disconnect-user").click();
      await page.locator("#confirm-yes").click();
      expect((await bob.closed).code).toBe(1008);
      await expect
        .poll(() => page.locator("#log li").first().textContent())
        .toContain('{"closed":1}');
    }, 20_000);

    it("broadcasts a test message to a subscriber on the other instance", async () => {
      const carol = clients[2] as WsClient;
      await page.locator("#channel").fill("rooms/7");
      await page.locator("#data").fill('{"text":"test from the dashboard"}');
      await page.locator("#broadcast").click();
      await page.locator("#confirm-yes").click();
      expect(await carol.take((frame) => frame.type === "data", 5000)).toMatchObject({
        channel: "rooms/7",
        data: { text: "test from the dashboard" },
      });
    }, 20_000);

    it("keeps plotting under a steady load; no console error, no request but its own", async () => {
      // A few seconds of load with connections coming and going, for the plots.
      const load: WsClient[] = [];
      for (let second = 0; second < 6; second++) {
        for (let i = 0; i < 4; i++) {
          const made = await connect(second % 2 ? b : a, `user${second}-${i}`);
          made.send({ type: "subscribe", channel: `rooms/${i}`, id: 1 });
          if (i === 0) made.send({ type: "subscribe", channel: "news", id: 2 });
          if (i < 2) made.send({ type: "subscribe", channel: "lobby", id: 3 });
          load.push(made);
        }
        for (const [i, made] of load.entries()) {
          for (let n = 0; n < 5; n++)
            made.send({
              type: "action",
              channel: i % 3 ? "add" : "search",
              id: 10 + n,
              data: i % 3 ? { a: n, b: n } : { q: "x".repeat(n) },
            });
        }
        if (second === 4) for (const made of load.slice(0, 6)) made.ws.close();
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      await expect.poll(() => page.locator("#plot-frames polyline").count()).toBe(2);
      await expect.poll(() => cell("presence", "lobby", 2).textContent()).not.toBeNull();
      await page.screenshot({ path: join(root, "docs", "dashboard.png"), fullPage: true });
      expect(problems).toEqual([]);
      const own = new Set([
        `http://127.0.0.1:${a.port}/admin?token=${TOKEN}`,
        `http://127.0.0.1:${a.port}/admin`,
        `ws://127.0.0.1:${a.port}/admin`,
      ]);
      expect(requests.filter((url) => !own.has(url))).toEqual([]);
    }, 30_000);
  },
);
