// The client in a real browser: a page served by a test server, loaded in headless
// Chromium, calls an action and receives a broadcast.

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attach } from "../adapters/node.ts";
import seed from "../examples/main.ts";
import { CHROMIUM_ARGS, ensureChromium } from "./helpers/chromium.ts";
import { bundleClient } from "./helpers/client-bundle.ts";

const executablePath = ensureChromium();

const page = `<!doctype html>
<meta charset="utf-8">
<title>SocketAPI client</title>
<pre id="log"></pre>
<script type="module">
  import { createClient } from "/client.js";
  const log = (line) => (document.getElementById("log").textContent += line + "\\n");
  const client = createClient("ws://" + location.host + "/ws");
  const messages = [];
  const stop = client.subscribe("chat", (data) => messages.push(data.message));
  await stop.ready;
  const sum = await client.action("add_numbers", { a: 5, b: 3 });
  log("sum " + sum);
  await client.action("send_message", { message: "hello from the browser" });
  while (messages.length === 0) await new Promise((r) => setTimeout(r, 10));
  window.result = { sum, messages, status: client.status };
</script>`;

describe.skipIf(!executablePath)(
  "the client in headless Chromium (skipped: no chromium and no root to install it)",
  () => {
    let server: ReturnType<typeof createServer>;
    let browser: Browser;

    beforeAll(async () => {
      const bundle = await bundleClient();
      server = createServer((req, res) => {
        if (req.url === "/client.js") {
          res.writeHead(200, { "content-type": "text/javascript" });
          res.end(bundle);
        } else {
          res.writeHead(200, { "content-type": "text/html" });
          res.end(page);
        }
      });
      attach(seed, server, { path: "/ws" });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      // Playwright gives the browser a fresh, empty profile of its own.
      browser = await chromium.launch({
        executablePath: executablePath as string,
        args: CHROMIUM_ARGS,
      });
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
      server?.closeAllConnections();
      await new Promise((resolve) => server?.close(resolve));
    });

    it("calls an action and receives a broadcast", async () => {
      const tab = await browser.newPage();
      const errors: string[] = [];
      tab.on("pageerror", (error) => errors.push(error.message));
      await tab.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      await tab.waitForFunction(() => (window as { result?: unknown }).result !== undefined, null, {
        timeout: 10_000,
      });
      const result = await tab.evaluate(() => (window as unknown as { result: unknown }).result);
      expect(errors).toEqual([]);
      expect(result).toEqual({ sum: 8, messages: ["hello from the browser"], status: "open" });
      expect(await tab.textContent("#log")).toContain("sum 8");
    });
  },
);
