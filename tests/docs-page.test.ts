// The live docs page in headless Chromium: served by the app with `docs: true`, it lists the
// seed example's actions and channels, calls add_numbers, subscribes to chat and shows the
// broadcast send_message makes, with no console error. It writes its screenshot; with
// SOCKETAPI_SCREENSHOT=1 into docs/, where docs/asyncapi.md shows it.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NodeServer, serve } from "../adapters/node.ts";
import seed from "../examples/main.ts";
import { SocketAPI } from "../src/index.ts";
import { CHROMIUM_ARGS, ensureChromium } from "./helpers/chromium.ts";
import { root } from "./helpers/server-process.ts";

const executablePath = ensureChromium();

describe.skipIf(!executablePath)(
  "the docs page in headless Chromium (skipped: no chromium and no root to install it)",
  () => {
    let server: NodeServer;
    let browser: Browser;
    let tab: Page;
    const problems: string[] = [];

    beforeAll(async () => {
      server = await serve(seed, { port: 0, docs: { asyncapi: { title: "Seed example" } } });
      browser = await chromium.launch({
        executablePath: executablePath as string,
        args: CHROMIUM_ARGS,
      });
      tab = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      tab.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
      tab.on("console", (message) => {
        if (message.type() === "error" || message.type() === "warning") {
          problems.push(`console ${message.type()}: ${message.text()}`);
        }
      });
      await tab.goto(`http://127.0.0.1:${server.port}/docs`);
      // Connected, and the document read: two things the page does at once.
      await tab.waitForSelector("#status.open", { timeout: 10_000 });
      await tab.waitForSelector("[data-channel]", { timeout: 10_000 });
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
      await server?.close();
    });

    it("lists the actions and channels, with their schemas", async () => {
      expect(await tab.title()).toBe("Seed example · docs");
      const actions = await tab.$$eval("[data-action]", (cards) =>
        cards.map((card) => card.getAttribute("data-action")),
      );
      const channels = await tab.$$eval("[data-channel]", (cards) =>
        cards.map((card) => card.getAttribute("data-channel")),
      );
      expect(actions).toEqual(["add_numbers", "send_message"]);
      expect(channels).toEqual(["chat"]);
      const inputSchema = await tab.textContent('[data-action="add_numbers"] details pre');
      expect(JSON.parse(inputSchema ?? "")).toEqual({
        type: "object",
        properties: { a: { type: "integer" }, b: { type: "integer" } },
        required: ["a", "b"],
      });
      expect(problems).toEqual([]);
    });

    it("calls add_numbers with 5 and 3 and shows 8", async () => {
      const card = '[data-action="add_numbers"]';
      await tab.fill(`${card} input[name="a"]`, "5");
      await tab.fill(`${card} input[name="b"]`, "3");
      await tab.click(`${card} button`);
      await tab.waitForSelector(`${card} .result.ok`);
      expect(await tab.textContent(`${card} .result`)).toBe("8");
      // The frames went and came with their request id.
      const log = await tab.$$eval("#log li", (items) => items.map((item) => item.textContent));
      expect(
        log.some((line) =>
          line?.includes('{"type":"action","channel":"add_numbers","data":{"a":5,"b":3},"id":'),
        ),
      ).toBe(true);
      expect(log.some((line) => line?.includes('"status":"completed","data":8'))).toBe(true);
      expect(problems).toEqual([]);
    });

    it("shows an error with its code and issues", async () => {
      const card = '[data-action="add_numbers"]';
      await tab.fill(`${card} input[name="a"]`, "1.5");
      await tab.click(`${card} button`);
      await tab.waitForSelector(`${card} .result.error`);
      expect(await tab.textContent(`${card} .result`)).toContain("INVALID_PARAMS");
      expect(await tab.$eval("#log li.error", (item) => item.textContent)).toContain(
        '"code":"INVALID_PARAMS"',
      );
    });

    it("subscribes to chat, and shows the broadcast send_message makes", async () => {
      const chat = '[data-channel="chat"]';
      await tab.click(`${chat} button:text("Subscribe")`);
      await tab.waitForFunction(
        (selector) => document.querySelector(selector)?.textContent?.includes("subscribed to chat"),
        `${chat} .row`,
      );
      const send = '[data-action="send_message"]';
      await tab.fill(`${send} input[name="message"]`, "hello from the docs page");
      await tab.click(`${send} button`);
      await tab.waitForFunction(
        (selector) =>
          document.querySelector(selector)?.textContent?.includes("hello from the docs page"),
        `${chat} .feed`,
      );
      expect(JSON.parse((await tab.textContent(`${chat} .feed`)) ?? "")).toEqual({
        message: "hello from the docs page",
      });
      await tab.waitForSelector(`${send} .result.ok`);
      expect(await tab.textContent(`${send} .result`)).toBe("completed (no data)");
      expect(problems).toEqual([]);
    });

    it("is one page with nothing to fetch but the document and the socket", async () => {
      const requests: string[] = [];
      const sockets: string[] = [];
      const fresh = await browser.newPage();
      fresh.on("request", (request) => requests.push(new URL(request.url()).pathname));
      fresh.on("websocket", (socket) => sockets.push(socket.url()));
      await fresh.goto(`http://127.0.0.1:${server.port}/docs`);
      await fresh.waitForSelector("#status.open");
      await fresh.waitForSelector("[data-action]");
      expect(requests.sort()).toEqual(["/asyncapi.json", "/docs"]);
      expect(sockets).toEqual([`ws://127.0.0.1:${server.port}/`]);
      const screenshot = await tab.screenshot({ fullPage: true });
      expect(screenshot.subarray(1, 4).toString()).toBe("PNG");
      expect(screenshot.length).toBeGreaterThan(10_000);
      const target =
        process.env.SOCKETAPI_SCREENSHOT === "1"
          ? join(root, "docs", "docs-page.png")
          : join(mkdtempSync(join(tmpdir(), "socketapi-docs-")), "docs-page.png");
      writeFileSync(target, screenshot);
      await fresh.close();
    });

    it("connects to an app that wants a token in the query: the page's own, or one typed in", async () => {
      // As docs/security.md recommends for browsers: the token in the socket's query.
      const guarded = new SocketAPI({
        onConnect: (request) =>
          new URL(request.url).searchParams.get("token") === "s3cret"
            ? { user: "ada" }
            : new Response("Unauthorized", { status: 401 }),
      })
        .action("whoami", (_, ctx) => ctx.connection.state)
        .action("ping_me", () => "pong");
      const served = await serve(guarded, { port: 0, docs: true });
      const page = await browser.newPage();
      const seen: string[] = [];
      page.on("pageerror", (error) => seen.push(`page error: ${error.message}`));
      page.on("websocket", (socket) => seen.push(socket.url()));
      try {
        const base = `http://127.0.0.1:${served.port}`;
        // Without it: refused, and the page says what to do.
        await page.goto(`${base}/docs`);
        await page.waitForSelector("#status.closed", { timeout: 10_000 });
        expect(await page.textContent("#status")).toContain("give the query the server needs");
        // Typed in the page's query field, then Reconnect.
        await page.fill("#query", "token=s3cret");
        await page.click("#reconnect");
        await page.waitForSelector("#status.open", { timeout: 10_000 });
        // The status names the socket, never the token.
        expect(await page.textContent("#status")).not.toContain("s3cret");
        const card = '[data-action="whoami"]';
        await page.click(`${card} button`);
        await page.waitForSelector(`${card} .result.ok`);
        expect(JSON.parse((await page.textContent(`${card} .result`)) ?? "")).toEqual({
          user: "ada",
        });
        // An action without input has no editor, and is called without data.
        expect(await page.textContent('[data-action="ping_me"] p.muted')).toBe("takes no input");
        expect(await page.$('[data-action="ping_me"] textarea')).toBeNull();
        await page.click('[data-action="ping_me"] button');
        await page.waitForSelector('[data-action="ping_me"] .result.ok');
        // The page's own query goes to the socket: /docs?token=... connects at once.
        await page.goto(`${base}/docs?token=s3cret`);
        await page.waitForSelector("#status.open", { timeout: 10_000 });
        expect(seen.filter((entry) => entry.startsWith("page error"))).toEqual([]);
        expect(seen.at(-1)).toBe(`ws://127.0.0.1:${served.port}/?token=s3cret`);
      } finally {
        await page.close();
        await served.close();
      }
    });

    it("shows a streaming action's chunks as they arrive, and cancels it", async () => {
      let stopped = 0;
      const streaming = new SocketAPI()
        .action("count", async function* (_, ctx) {
          try {
            for (let n = 1; n <= 1000 && !ctx.signal.aborted; n++) {
              await new Promise((resolve) => setTimeout(resolve, n <= 3 ? 10 : 300));
              yield n;
            }
            return "counted";
          } finally {
            stopped++;
          }
        })
        .action("story", async function* () {
          yield "once";
          yield "upon";
          return "the end";
        });
      const served = await serve(streaming, { port: 0, docs: true });
      const page = await browser.newPage();
      const seen: string[] = [];
      page.on("pageerror", (error) => seen.push(`page error: ${error.message}`));
      try {
        await page.goto(`http://127.0.0.1:${served.port}/docs`);
        await page.waitForSelector("#status.open", { timeout: 10_000 });
        const story = '[data-action="story"]';
        await page.click(`${story} button:text("Call")`);
        await page.waitForSelector(`${story} .result.ok`);
        expect(await page.textContent(`${story} .result`)).toBe('"once"\n"upon"\n"the end"');
        // Chunks show before the end; Cancel stops it on the server.
        const count = '[data-action="count"]';
        await page.click(`${count} button:text("Call")`);
        await page.waitForFunction(
          (selector) => document.querySelector(selector)?.textContent?.startsWith("1\n2\n3"),
          `${count} .result`,
        );
        expect(await page.$eval(`${count} .result`, (node) => node.className)).toBe("result");
        await page.click(`${count} button:text("Cancel")`);
        await page.waitForSelector(`${count} .result.error`);
        expect(await page.textContent(`${count} .result`)).toContain(
          "CANCELLED: Cancelled by the client.",
        );
        await expect.poll(() => stopped).toBe(1);
        expect(await page.isHidden(`${count} button:text("Cancel")`)).toBe(true);
        expect(seen).toEqual([]);
      } finally {
        await page.close();
        await served.close();
      }
    });
  },
);
