import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import * as v from "valibot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NodeServer, serve } from "../adapters/node.ts";
import { redisRelay } from "../relays/redis.ts";
import { SocketAPI } from "../src/index.ts";
import { type Broker, ensureNginx, type Nginx, startNginx, startRedis } from "./helpers/brokers.ts";
import { CHROMIUM_ARGS, ensureChromium } from "./helpers/chromium.ts";
import { bundleClient } from "./helpers/client-bundle.ts";
import { freePort, root } from "./helpers/server-process.ts";

const executablePath = ensureChromium();
const nginx = ensureNginx();

function chatApp(name: string, redis: Broker) {
  return new SocketAPI({ relay: redisRelay(redis.url) })
    .channel("chat", { params: v.object({ message: v.optional(v.string(), "") }) }, (data) => data)
    .action("say", { input: v.object({ message: v.string() }) }, async (input, ctx) => {
      await ctx.channels.chat(input);
    })
    .action("where", () => name);
}

const page = `<!doctype html>
<meta charset="utf-8">
<title>SocketAPI over SSE and POST</title>
<ul id="messages"></ul>
<script type="module">
  import { createClient } from "/page/client.js";
  const client = createClient("ws://" + location.host + "/", { fallback: true });
  const list = document.getElementById("messages");
  window.heard = [];
  const subscription = client.subscribe("chat", ({ message }) => {
    window.heard.push(message);
    list.append(Object.assign(document.createElement("li"), { textContent: message }));
  });
  await subscription.ready;
  window.say = (message) => client.action("say", { message });
  window.where = () => client.action("where");
  window.clientStatus = () => client.status;
  window.ready = true;
</script>`;

describe.skipIf(!executablePath || !nginx)(
  "Chromium behind nginx without upgrades, two instances over Redis (skipped: no chromium or nginx, and no root to install them)",
  () => {
    let redis: Broker;
    const instances: NodeServer[] = [];
    const apps: ReturnType<typeof chatApp>[] = [];
    /** Requests each instance was sent, by method. */
    const seen = [new Map<string, number>(), new Map<string, number>()];
    let files: Server;
    let proxy: Nginx | undefined;
    let browser: Browser;
    let base: string;

    beforeAll(async () => {
      redis = await startRedis();
      for (const [i, name] of ["a", "b"].entries()) {
        const app = chatApp(name, redis);
        apps.push(app);
        const instance = await serve(app, { port: 0, fallback: true });
        instance.server.on("request", (req) => {
          const counts = seen[i] as Map<string, number>;
          counts.set(req.method ?? "", (counts.get(req.method ?? "") ?? 0) + 1);
        });
        instances.push(instance);
      }
      const bundle = await bundleClient();
      files = createServer((req, res) => {
        const js = req.url?.endsWith("client.js");
        res.writeHead(200, { "content-type": js ? "text/javascript" : "text/html" });
        res.end(js ? bundle : page);
      });
      await new Promise<void>((resolve) => files.listen(0, "127.0.0.1", resolve));
      // The guide's configuration, pointed at these instances and a free port; the page is
      // served from the same origin, under /page/.
      const guide = await readFile(join(root, "docs", "transports.md"), "utf8");
      const block = /```nginx\n([\s\S]*?)```/.exec(guide)?.[1] as string;
      expect(block).toContain("proxy_buffering off;");
      expect(block).not.toContain("Upgrade");
      const port = await freePort();
      const [a, b] = instances as [NodeServer, NodeServer];
      const config = block
        .replace("server 10.0.0.11:8000;", `server 127.0.0.1:${a.port};`)
        .replace("server 10.0.0.12:8000;", `server 127.0.0.1:${b.port};`)
        .replace("listen 80;", `listen 127.0.0.1:${port};`)
        .replace(
          "    location / {",
          `    location /page/ {\n        proxy_pass http://127.0.0.1:${(files.address() as AddressInfo).port}/;\n    }\n    location / {`,
        );
      proxy = startNginx(nginx as string, config);
      base = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 10_000;
      for (;;) {
        const up = await fetch(`${base}/page/`).then(
          (response) => response.ok,
          () => false,
        );
        if (up) break;
        if (Date.now() > deadline) throw new Error("nginx did not start");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      browser = await chromium.launch({
        executablePath: executablePath as string,
        args: CHROMIUM_ARGS,
      });
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
      await proxy?.stop();
      files?.close();
      for (const instance of instances) await instance.close();
      await redis?.kill();
    });

    it("falls back to SSE and POST, and carries a message from one page to the other", async () => {
      const [one, two] = await Promise.all([browser.newPage(), browser.newPage()]);
      for (const each of [one, two]) {
        await each.goto(`${base}/page/`);
        await each.waitForFunction(() => (window as { ready?: boolean }).ready === true, null, {
          timeout: 15_000,
        });
      }
      // Nothing got through as a WebSocket: both connections are fallback sessions.
      const sockets = apps.flatMap((app) =>
        [...app.connections].map(
          (c) => (c as unknown as { socket: object }).socket.constructor.name,
        ),
      );
      expect(sockets).toEqual(["SseSocket", "SseSocket"]);
      for (let i = 0; i < 5; i++) {
        await one.evaluate(
          (n) => (window as { say?: (m: string) => Promise<void> }).say?.(`hello ${n}`),
          i,
        );
      }
      await two.waitForFunction(
        () => ((window as { heard?: string[] }).heard ?? []).length >= 5,
        null,
        { timeout: 10_000 },
      );
      expect(await two.evaluate(() => (window as { heard?: string[] }).heard)).toEqual(
        Array.from({ length: 5 }, (_, i) => `hello ${i}`),
      );
      expect(await two.locator("#messages li").count()).toBe(5);
      expect(
        await one.evaluate(() =>
          (window as unknown as { clientStatus: () => string }).clientStatus(),
        ),
      ).toBe("open");
      // Round-robin: both instances were sent POSTs (and the session's instance got them all).
      expect(seen[0]?.get("POST") ?? 0).toBeGreaterThan(0);
      expect(seen[1]?.get("POST") ?? 0).toBeGreaterThan(0);
      await Promise.all([one.close(), two.close()]);
    }, 60_000);
  },
);
