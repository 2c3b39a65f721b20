// examples/react, built with Vite and driven in Chromium: two pages of the chat room; a
// message from one shown in the other, presence updated, a reload that gets the messages
// it missed, a summary streamed; no console error; a screenshot for docs/react.md.
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildPage, servePage } from "../examples/react/serve.ts";
import app from "../examples/react/server.ts";
import { CHROMIUM_ARGS, ensureChromium } from "./helpers/chromium.ts";
import { root } from "./helpers/server-process.ts";

const executablePath = ensureChromium();

describe("docs/react.md", () => {
  it("shows the example's code as the example has it", async () => {
    const flat = (text: string) => text.replace(/\s+/g, " ").trim();
    const example = flat(
      (
        await Promise.all(
          ["App.tsx", "main.tsx"].map((file) =>
            readFile(join(root, "examples", "react", file), "utf8"),
          ),
        )
      ).join("\n"),
    );
    const guide = await readFile(join(root, "docs", "react.md"), "utf8");
    const blocks = [...guide.matchAll(/```tsx\n([\s\S]*?)```/g)].map((match) => match[1] ?? "");
    expect(blocks.length).toBeGreaterThanOrEqual(6);
    for (const block of blocks) {
      for (const part of block.split("// ...")) expect(example).toContain(flat(part));
    }
  });
});

describe.skipIf(!executablePath)(
  "the React example in Chromium (skipped: no chromium, and no root to install it)",
  () => {
    let served: Awaited<ReturnType<typeof servePage>>;
    let browser: Browser;
    const problems: string[] = [];

    beforeAll(async () => {
      await buildPage();
      served = await servePage(0);
      browser = await chromium.launch({
        executablePath: executablePath as string,
        args: CHROMIUM_ARGS,
      });
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
      await served?.close();
    });

    const open = async (name: string): Promise<Page> => {
      const page = await browser.newPage({ viewport: { width: 760, height: 560 } });
      page.on("pageerror", (error) => problems.push(`${name}: ${error.message}`));
      page.on("console", (message) => {
        if (message.type() === "error") problems.push(`${name}: ${message.text()}`);
      });
      await page.goto(`http://127.0.0.1:${served.port}/?name=${name}`);
      await page.getByTestId("status").getByText("open").waitFor({ timeout: 15_000 });
      return page;
    };
    const say = async (page: Page, text: string) => {
      await page.getByLabel("message", { exact: true }).fill(text);
      await page.getByRole("button", { name: "Send" }).click();
    };
    const messages = async (page: Page) =>
      (await page.getByLabel("messages").locator("li").allTextContents()).map((text) =>
        text.replace(/\s+/g, " ").trim(),
      );

    it("carries messages between pages, shows who is here, recovers a reload, streams a summary", async () => {
      const ada = await open("ada");
      const bob = await open("bob");
      await ada.getByTestId("people").getByText("ada, bob").waitFor({ timeout: 10_000 });
      await say(ada, "hello bob");
      await bob.getByLabel("messages").getByText("hello bob").waitFor({ timeout: 10_000 });
      await say(bob, "hi ada");
      await ada.getByLabel("messages").getByText("hi ada").waitFor({ timeout: 10_000 });
      // Bob reloads; what Ada says meanwhile is there when his page is back.
      const reloading = bob.reload();
      await say(ada, "while you were away");
      await reloading;
      await bob.getByTestId("status").getByText("open").waitFor({ timeout: 15_000 });
      await bob
        .getByLabel("messages")
        .getByText("while you were away")
        .waitFor({ timeout: 10_000 });
      // The kept history, oldest first, then live: each message once.
      expect(await messages(bob)).toEqual([
        "ada hello bob",
        "bob hi ada",
        "ada while you were away",
      ]);
      await ada.getByRole("button", { name: "Summary" }).click();
      await ada
        .getByTestId("summary")
        .getByText("3 messages from 2 people in this room.")
        .waitFor({ timeout: 10_000 });
      // One subscription per page, StrictMode and all.
      expect(await app.countSubscribers("room")).toBe(2);
      await mkdir(join(root, "docs"), { recursive: true });
      await ada.screenshot({ path: join(root, "docs", "react-example.png") });
      expect(problems).toEqual([]);
      await Promise.all([ada.close(), bob.close()]);
    }, 60_000);
  },
);
