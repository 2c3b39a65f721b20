// The client in a real browser: a page served by a test server, loaded in headless
// Chromium, calls an action and receives a broadcast.

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attach } from "../adapters/node.ts";
import seed from "../examples/main.ts";
import { SocketAPI } from "../src/index.ts";
import { CHROMIUM_ARGS, ensureChromium } from "./helpers/chromium.ts";
import { bundleClient } from "./helpers/client-bundle.ts";

const executablePath = ensureChromium();

/** An app that takes `NAME:TTL` tokens, for the page that logs in with the client's `token`. */
const seenByAuth = { urls: [] as string[], tokens: [] as string[], refreshes: [] as string[] };
const auth = new SocketAPI({
  onConnect: (request, credential) => {
    seenByAuth.urls.push(request.url);
    seenByAuth.tokens.push(`${credential.source}:${credential.token}`);
    const [user, ttl] = (credential.token ?? "").split(":");
    if (!user) return new Response("Unauthorized", { status: 401 });
    credential.expiresAt = Date.now() + Number(ttl);
    return { user };
  },
  onRefresh: (credential) => {
    seenByAuth.refreshes.push(credential.token);
    const [user, ttl] = credential.token.split(":");
    credential.expiresAt = Date.now() + Number(ttl);
    return { user: user as string };
  },
  userId: (connection) => connection.state.user,
}).action("whoami", (_, ctx) => ({
  user: ctx.connection.state.user,
  protocol: ctx.request.headers.get("sec-websocket-protocol"),
}));

const authPage = `<!doctype html>
<meta charset="utf-8">
<title>SocketAPI client with a token</title>
<script type="module">
  import { createClient } from "/client.js";
  const url = "ws://" + location.host + "/auth";
  // What the browser negotiates: the protocol it got, with the token offered as the client does.
  const raw = new WebSocket(url, ["socketapi", "socketapi.bearer." + btoa("eve:60000").replace(/=+$/, "")]);
  const negotiated = await new Promise((resolve) => { raw.onopen = () => resolve(raw.protocol); raw.onerror = () => resolve("error"); });
  raw.close();
  let issued = 0;
  const client = createClient(url, { token: async () => "ada:" + (++issued === 1 ? 800 : 60000) });
  const me = await client.action("whoami");
  // Past the first token's expiry: the client refreshed it in time.
  await new Promise((r) => setTimeout(r, 1200));
  window.result = { negotiated, me, status: client.status, again: await client.action("whoami") };
</script>`;

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
        } else if (req.url === "/login") {
          res.writeHead(200, { "content-type": "text/html" });
          res.end(authPage);
        } else {
          res.writeHead(200, { "content-type": "text/html" });
          res.end(page);
        }
      });
      attach(seed, server, { path: "/ws" });
      attach(auth, server, { path: "/auth" });
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

    it("offers its token in Sec-WebSocket-Protocol, never in the URL, and refreshes it before it expires", async () => {
      const tab = await browser.newPage();
      const errors: string[] = [];
      tab.on("pageerror", (error) => errors.push(error.message));
      await tab.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/login`);
      await tab.waitForFunction(() => (window as { result?: unknown }).result !== undefined, null, {
        timeout: 10_000,
      });
      const result = await tab.evaluate(() => (window as unknown as { result: unknown }).result);
      expect(errors).toEqual([]);
      expect(result).toEqual({
        negotiated: "socketapi",
        me: { user: "ada", protocol: "socketapi" },
        status: "open",
        again: { user: "ada", protocol: "socketapi" },
      });
      expect(seenByAuth.tokens).toEqual(["protocol:eve:60000", "protocol:ada:800"]);
      expect(seenByAuth.refreshes).toEqual(["ada:60000"]);
      for (const url of seenByAuth.urls) expect(url).not.toContain("ada");
    });
  },
);
