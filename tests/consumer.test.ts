// The package as a user gets it: `npm pack`, installed from the tarball (offline) into a
// fresh project outside the repository, then run with plain Node, Bun and
// Deno, and type-checked by TypeScript 5 and 7 with strict consumer flags.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Broker, startRedis } from "./helpers/brokers.ts";
import { collectSnippets } from "./helpers/doc-snippets.ts";
import { root } from "./helpers/server-process.ts";

const exec = promisify(execFile);
const bin = (name: string) => join(root, "node_modules", ".bin", name);
let project: string;

async function run(command: string, args: string[], env: Record<string, string> = {}) {
  return exec(command, args, {
    cwd: project,
    env: { ...process.env, NO_COLOR: "1", ...env },
    timeout: 60_000,
  });
}

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), "socketapi-consumer-"));
  // `npm pack` runs the build (prepack): the tarball holds dist/ as published.
  const { stdout } = await exec("npm", ["pack", "--pack-destination", project, "--silent"], {
    cwd: root,
    timeout: 120_000,
  });
  const tarball = join(project, stdout.trim().split("\n").at(-1) as string);
  // The repository runs its sources: the build is for the tarball only.
  await rm(join(root, "dist"), { recursive: true, force: true });
  // The other packages come from this repository's node_modules, copied (not linked) by
  // npm: the machine may have no registry, and npm's cache keeps no package documents.
  const dependencies: Record<string, string> = { socketapi: `file:${tarball}` };
  for (const name of [
    "valibot",
    // socketapi's one dependency: app.asyncapi()'s converter.
    "@valibot/to-json-schema",
    // Its peer the core imports: OpenTelemetry's API (a no-op without an SDK).
    "@opentelemetry/api",
    "ws",
    "hono",
    "@types/node",
    "undici-types",
    "@types/ws",
    "@types/bun",
    "bun-types",
    "@cloudflare/workers-types",
    // socketapi/redis's optional dependency, and what it needs.
    ...(await dependencyClosure("ioredis")),
    // socketapi/msgpack's.
    ...(await dependencyClosure("msgpackr")),
    // socketapi/react's.
    ...(await dependencyClosure("react")),
    ...(await dependencyClosure("react-dom")),
    ...(await dependencyClosure("@types/react")),
  ]) {
    dependencies[name] = `file:${join(root, "node_modules", name)}`;
  }
  await writeFile(
    join(project, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module", dependencies }),
  );
  await exec(
    "npm",
    ["install", "--offline", "--install-links", "--no-audit", "--no-fund", "--ignore-scripts"],
    { cwd: project, timeout: 120_000 },
  );
}, 240_000);

afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true });
});

/**
 * The declarations of the packages `codes` import that the project does not have (neither
 * socketapi nor its installed dependencies), from this repository's node_modules: `paths`
 * for a tsconfig.json.
 */
async function typesOf3rdParty(codes: string[]): Promise<Record<string, [string]>> {
  const installed = (name: string) => readFile(join(project, "node_modules", name, "package.json"));
  const paths: Record<string, [string]> = {};
  for (const code of codes) {
    for (const [, name] of code.matchAll(/from "((?:@[\w.-]+\/)?[\w.-]+)"/g)) {
      if (!name || name.startsWith("socketapi") || name in paths) continue;
      if (
        await installed(name).then(
          () => true,
          () => false,
        )
      )
        continue;
      const manifest = JSON.parse(
        await readFile(join(root, "node_modules", name, "package.json"), "utf8"),
      ) as { types?: string; typings?: string; exports?: { ".": { import?: { types?: string } } } };
      const types = manifest.exports?.["."]?.import?.types ?? manifest.types ?? manifest.typings;
      if (types) paths[name] = [join(root, "node_modules", name, types)];
    }
  }
  return paths;
}

/** A package and every package it depends on, as installed in this repository. */
async function dependencyClosure(name: string, seen = new Set<string>()): Promise<string[]> {
  if (seen.has(name)) return [];
  seen.add(name);
  const manifest = JSON.parse(
    await readFile(join(root, "node_modules", name, "package.json"), "utf8"),
  ) as { dependencies?: Record<string, string> };
  for (const dependency of Object.keys(manifest.dependencies ?? {})) {
    await dependencyClosure(dependency, seen);
  }
  return [...seen];
}

// An app and the typed client calling it, the same on every runtime but for the lines that
// serve it.
const app = `
import * as v from "valibot";
import { SocketAPI } from "socketapi";
import { createClient } from "socketapi/client";

export const app = new SocketAPI()
  .action("add_numbers", { input: v.object({ a: v.number(), b: v.number() }) }, ({ a, b }) => a + b)
  .channel("chat", { params: v.object({ message: v.optional(v.string(), "Welcome") }) }, (p) => p)
  .action("send_message", { input: v.object({ message: v.string() }) }, async ({ message }, ctx) => {
    await ctx.channels.chat({ message });
  });

export async function call(url, WebSocket) {
  const client = createClient(url, WebSocket ? { WebSocket } : {});
  const heard = new Promise((resolve) => client.subscribe("chat", resolve));
  const sum = await client.action("add_numbers", { a: 5, b: 3 });
  await client.action("send_message", { message: "hi" });
  const message = await heard;
  client.close();
  return { sum, message };
}
`;

describe("the packed package, installed in a project outside the repository", {
  timeout: 90_000,
}, () => {
  it("ships ESM JavaScript, declarations and a license, and no TypeScript-only entry point", async () => {
    const pkg = JSON.parse(
      await readFile(join(project, "node_modules", "socketapi", "package.json"), "utf8"),
    );
    for (const [subpath, target] of Object.entries<{ import: string } | string>(pkg.exports)) {
      if (typeof target === "string") continue;
      expect(target.import, subpath).toMatch(/\.js$/);
    }
    await expect(
      readFile(join(project, "node_modules", "socketapi", "LICENSE"), "utf8"),
    ).resolves.toMatch(/MIT License/);
  });

  it("type-checks every TypeScript block of README.md and docs/ under the README's tsconfig.json", async () => {
    // The tsconfig.json the README recommends, as it is written there.
    const readme = await readFile(join(root, "README.md"), "utf8");
    const block = /\*\*tsconfig\.json\*\*[\s\S]*?```json\n([\s\S]*?)\n\s*```/.exec(readme)?.[1];
    const recommended = JSON.parse(block ?? "null") as { compilerOptions: Record<string, unknown> };
    expect(recommended.compilerOptions).toMatchObject({ module: "NodeNext", strict: true });
    // The blocks import the seed example as ./main.ts: the README's own block of it.
    const snippets = await collectSnippets();
    const seedBlock = snippets.find(
      (s) => s.name.startsWith("README.md") && s.code.includes('.action(\n    "add_numbers"'),
    );
    expect(seedBlock?.code).toContain("export default app;");
    const dir = join(project, "snippets");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "main.ts"), seedBlock?.code ?? "");
    // Deno's blocks are checked by deno itself, the test files' by the docs test.
    const checked = snippets.filter(
      (s) => s.lang === "ts" && ["node", "bun", "workers"].includes(s.runtime),
    );
    for (const snippet of checked) await writeFile(join(dir, snippet.file), snippet.code);
    const typesOf = { node: ["node"], bun: ["bun"], workers: ["@cloudflare/workers-types"] };
    const failures: string[] = [];
    for (const runtime of ["node", "bun", "workers"] as const) {
      const files = checked.filter((s) => s.runtime === runtime).map((s) => s.file);
      expect(files.length, runtime).toBeGreaterThan(0);
      const config = join(dir, `tsconfig.${runtime}.json`);
      await writeFile(
        config,
        JSON.stringify({
          compilerOptions: {
            ...recommended.compilerOptions,
            types: typesOf[runtime],
            ...(runtime === "workers" ? { lib: ["ES2023"] } : {}),
            // Other packages the blocks import, as this repository has them (not installed
            // here: the machine may have no registry); socketapi is the installed tarball.
            paths: await typesOf3rdParty(checked.map((snippet) => snippet.code)),
          },
          files: ["main.ts", ...files],
        }),
      );
      const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
      const result = await run(process.execPath, [tsc, "-p", config]).catch(
        (error: { stdout: string }) => ({ stdout: error.stdout }),
      );
      if (result.stdout) failures.push(`${runtime}:\n${result.stdout}`);
    }
    expect(failures).toEqual([]);
  });

  it("serves with plain Node (no tsx, no flags) from a .mjs app, and its typed client calls it", async () => {
    await writeFile(join(project, "app.mjs"), app);
    await writeFile(
      join(project, "node-server.mjs"),
      `import WebSocket from "ws";
import { serve } from "socketapi/node";
import { app, call } from "./app.mjs";
const server = await serve(app, { port: 0 });
console.log(JSON.stringify(await call(server.url, WebSocket)));
await server.close();
`,
    );
    const { stdout } = await run(process.execPath, ["node-server.mjs"]);
    expect(JSON.parse(stdout)).toEqual({ sum: 8, message: { message: "hi" } });
  });

  it("speaks MessagePack, compresses, and falls back to SSE and POST, from the installed package", async () => {
    await writeFile(
      join(project, "transports.mjs"),
      `import * as v from "valibot";
import WebSocket from "ws";
import { SocketAPI } from "socketapi";
import { createClient } from "socketapi/client";
import { msgpack } from "socketapi/msgpack";
import { serve } from "socketapi/node";

const app = new SocketAPI({ codecs: [msgpack], compression: true }).action(
  "head",
  { input: v.object({ bytes: v.instance(Uint8Array) }) },
  ({ bytes }) => ({ head: bytes.subarray(0, 2), text: "x".repeat(2000) }),
);
const server = await serve(app, { port: 0, fallback: true });
const packed = createClient(server.url, { codec: msgpack, WebSocket });
const answer = await packed.action("head", { bytes: new Uint8Array([7, 8, 9]) });
class Blocked extends WebSocket {
  constructor(_url, protocols) {
    super("ws://127.0.0.1:1/", protocols);
  }
}
const fallen = createClient(server.url, { WebSocket: Blocked, fallback: true });
const overSse = await fallen.action("head", { bytes: new Uint8Array([1, 2, 3]) });
const raw = new WebSocket(server.url, { perMessageDeflate: true });
await new Promise((resolve) => raw.on("open", resolve));
console.log(JSON.stringify({
  head: [...answer.head],
  bytes: answer.head instanceof Uint8Array,
  sse: [...overSse.head],
  deflate: raw.extensions.includes("permessage-deflate"),
}));
raw.close();
packed.close();
fallen.close();
await server.close();
`,
    );
    const { stdout } = await run(process.execPath, ["transports.mjs"]);
    expect(JSON.parse(stdout)).toEqual({ head: [7, 8], bytes: true, sse: [1, 2], deflate: true });
  });

  it("renders socketapi/react's provider and hooks on a server, opening no socket", async () => {
    await writeFile(
      join(project, "react-ssr.mjs"),
      `import { createElement } from "react";
import { renderToString } from "react-dom/server";
import { createSocketAPIHooks } from "socketapi/react";

const { SocketAPIProvider, useConnection, useChannel } = createSocketAPIHooks();
const Status = () => createElement("p", null, useConnection().status + " " + useChannel("chat").ready);
console.log(renderToString(createElement(SocketAPIProvider, { url: "ws://127.0.0.1:1/" }, createElement(Status))));
`,
    );
    const { stdout } = await run(process.execPath, ["react-ssr.mjs"]);
    expect(stdout.trim()).toBe("<p>connecting false</p>");
  });

  it("describes itself: the AsyncAPI document and the docs page, from the installed package", async () => {
    await writeFile(join(project, "app.mjs"), app);
    await writeFile(
      join(project, "docs-server.mjs"),
      `import { serve } from "socketapi/node";
import { app } from "./app.mjs";
const server = await serve(app, { port: 0, docs: true });
const base = "http://127.0.0.1:" + server.port;
const document = await (await fetch(base + "/asyncapi.json")).json();
const page = await (await fetch(base + "/docs")).text();
console.log(JSON.stringify({ asyncapi: document.asyncapi, channels: Object.keys(document.channels), page: page.includes("pageScript(") }));
await server.close();
`,
    );
    const { stdout } = await run(process.execPath, ["docs-server.mjs"]);
    expect(JSON.parse(stdout)).toEqual({
      asyncapi: "3.0.0",
      channels: ["add_numbers", "send_message", "chat", "connection"],
      page: true,
    });
  });

  it("relays over Redis with socketapi/redis, and recovers on another instance from Redis Streams", async () => {
    let redis: Broker | undefined;
    try {
      redis = await startRedis();
      await writeFile(
        join(project, "redis-recovery.mjs"),
        `import * as v from "valibot";
import WebSocket from "ws";
import { SocketAPI } from "socketapi";
import { serve } from "socketapi/node";
import { redisRelay } from "socketapi/redis";

const make = () =>
  new SocketAPI({ relay: redisRelay(process.env.REDIS_URL) }).channel(
    "feed",
    { params: v.object({ n: v.optional(v.number(), 0) }), history: { size: 10, ttl: 60000 } },
    ({ n }) => ({ n }),
  );
const [a, b] = [make(), make()];
const [onA, onB] = [await serve(a, { port: 0 }), await serve(b, { port: 0 })];
const frames = (url, first) =>
  new Promise((resolve) => {
    const ws = new WebSocket(url);
    const got = [];
    ws.on("open", () => ws.send(JSON.stringify(first)));
    ws.on("message", (data) => {
      got.push(JSON.parse(String(data)));
      if (got[0].recovered !== undefined ? got.length === 4 : got.length === 1) {
        ws.close();
        resolve(got);
      }
    });
  });
const [position] = await frames(onA.url, { type: "subscribe", channel: "feed" });
for (let n = 1; n <= 3; n++) await a.channels.feed({ n });
const since = { offset: position.offset, epoch: position.epoch };
const recovered = await frames(onB.url, { type: "subscribe", channel: "feed", since });
console.log(JSON.stringify(recovered.map((f) => (f.type === "data" ? f.data.n : f.recovered))));
await onA.close();
await onB.close();
`,
      );
      const { stdout } = await run(process.execPath, ["redis-recovery.mjs"], {
        REDIS_URL: redis.url,
      });
      expect(JSON.parse(stdout)).toEqual([true, 1, 2, 3]);
    } finally {
      await redis?.kill();
    }
  });

  it("serves with Bun through socketapi/bun", async () => {
    await writeFile(
      join(project, "bun-server.mjs"),
      `import { bun } from "socketapi/bun";
import { app, call } from "./app.mjs";
const server = Bun.serve({ ...bun(app), port: 0, hostname: "127.0.0.1" });
console.log(JSON.stringify(await call(\`ws://127.0.0.1:\${server.port}/\`)));
server.stop(true);
`,
    );
    const { stdout } = await run(bin("bun"), ["bun-server.mjs"]);
    expect(JSON.parse(stdout)).toEqual({ sum: 8, message: { message: "hi" } });
  });

  it("serves with Deno through socketapi/deno, from node_modules", async () => {
    await writeFile(
      join(project, "deno-server.mjs"),
      `import { deno } from "socketapi/deno";
import { app, call } from "./app.mjs";
const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, deno(app).fetch);
console.log(JSON.stringify(await call(\`ws://127.0.0.1:\${server.addr.port}/\`)));
await server.shutdown();
`,
    );
    const { stdout } = await run(bin("deno"), ["run", "-A", "deno-server.mjs"]);
    expect(JSON.parse(stdout)).toEqual({ sum: 8, message: { message: "hi" } });
  });

  it("serves a TypeScript module with the socketapi command when tsx is not installed, or says what to do", async () => {
    await writeFile(join(project, "main.mjs"), `export { app as default } from "./app.mjs";\n`);
    const child = execFile(
      process.execPath,
      [
        join(project, "node_modules", "socketapi", "adapters", "node-cli.js"),
        "main.mjs",
        "--port",
        "0",
      ],
      { cwd: project },
    );
    const url = await new Promise<string>((resolve, reject) => {
      let output = "";
      child.stdout?.on("data", (chunk) => {
        output += chunk;
        const match = /at (ws:\/\/\S+)/.exec(output);
        if (match?.[1]) resolve(match[1]);
      });
      child.once("exit", (code) => reject(new Error(`exited with ${code}: ${output}`)));
    });
    expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/$/);
    child.kill("SIGTERM");
    await writeFile(join(project, "main.ts"), `export { app as default } from "./app.mjs";\n`);
    const typescript = await run(process.execPath, [
      join(project, "node_modules", "socketapi", "adapters", "node-cli.js"),
      "main.ts",
    ]).catch((error: { code: number; stderr: string }) => error);
    expect(typescript).toMatchObject({ code: 1 });
    expect((typescript as { stderr: string }).stderr).toMatch(/npm install --save-dev tsx/);
  });

  // What a consumer writes in TypeScript, checked with the consumer's own strict flags.
  const consumer = `
import * as v from "valibot";
import { Hono } from "hono";
import { depends, Router, SocketAPI } from "socketapi";
import { type NodeServer, serve } from "socketapi/node";
import { createClient, SocketAPIClientError } from "socketapi/client";
import { createTestClient } from "socketapi/testing";
import { socketapi } from "socketapi/hono";
import { deno } from "socketapi/deno";
import { serveWebSocket, type SocketLike } from "socketapi/adapter";

interface State { user: string }
const user = depends((ctx) => ctx.connection?.state);
const chat = new Router<State>().action(
  "post",
  { input: v.object({ text: v.string(), user }) },
  ({ text }) => text.length,
);
export const app = new SocketAPI<State>({ onConnect: () => ({ user: "ada" }) })
  .action("add_numbers", { input: v.object({ a: v.number(), b: v.number() }) }, ({ a, b }) => a + b)
  .action("stats", (_input, ctx) => ctx.app.connections.size)
  .include(chat, { prefix: "chat/" });

const server: NodeServer = await serve(app, { port: 0 });
const client = createClient<typeof app>(server.url);
const sum: number = await client.action("add_numbers", { a: 1, b: 2 });
const length: number = await client.action("chat/post", { text: "hi" });
const connections: number = await client.action("stats");
const tested = await createTestClient(app);
const also: number = await tested.action("add_numbers", { a: 1, b: 2 });
const hono = new Hono().get("/ws", socketapi(app));
const handler = deno(app);
const socket: SocketLike = { readyState: 1, send() {}, close() {} };
export const used = [sum, length, connections, also, hono, handler, socket, serveWebSocket, SocketAPIClientError];
`;
  const strict = {
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    exactOptionalPropertyTypes: true,
    noPropertyAccessFromIndexSignature: true,
    noUncheckedIndexedAccess: true,
    target: "ES2022",
    lib: ["ES2023", "DOM"],
    types: ["node"],
  };
  const resolutions = {
    bundler: { module: "ESNext", moduleResolution: "bundler" },
    nodenext: { module: "NodeNext", moduleResolution: "NodeNext" },
  };
  const compilers = {
    "TypeScript 5": join(root, "node_modules", "typescript5", "bin", "tsc"),
    "TypeScript 7": join(root, "node_modules", "typescript", "bin", "tsc"),
  };

  describe.each(Object.entries(compilers))("type-checked by %s", (_, tsc) => {
    it.each(Object.keys(resolutions))(
      "accepts a strict consumer of every Node-side entry point with moduleResolution %s",
      async (resolution) => {
        const dir = join(project, `ts-${resolution}-${tsc.includes("typescript5") ? 5 : 7}`);
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, "consumer.ts"), consumer);
        await writeFile(
          join(dir, "tsconfig.json"),
          JSON.stringify({
            compilerOptions: { ...strict, ...resolutions[resolution as keyof typeof resolutions] },
            include: ["consumer.ts"],
          }),
        );
        const checked = await run(process.execPath, [tsc, "-p", dir]).catch(
          (error: { stdout: string }) => error,
        );
        expect((checked as { stdout: string }).stdout).toBe("");
      },
    );

    // bun-types 1.4 and @types/node 20 disagree with each other under skipLibCheck: false
    // (CompressionStream, TLSSocket...): only what is in socketapi or the consumer counts.
    it("accepts a strict consumer of socketapi/bun with Bun's types (errors between bun-types and @types/node aside)", async () => {
      const dir = join(project, `ts-bun-${tsc.includes("typescript5") ? 5 : 7}`);
      await mkdir(dir, { recursive: true });
      await writeFile(
        join(dir, "consumer.ts"),
        `import { SocketAPI } from "socketapi";
import { bun, websocket } from "socketapi/bun";
const app = new SocketAPI().action("hello", () => "hi");
const server = Bun.serve({ ...bun(app), port: 0 });
export const used = [server, websocket];
`,
      );
      await writeFile(
        join(dir, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: { ...strict, ...resolutions.bundler, lib: ["ES2023"], types: ["bun"] },
          include: ["consumer.ts"],
        }),
      );
      const checked = await run(process.execPath, [tsc, "-p", dir]).catch(
        (error: { stdout: string }) => error,
      );
      const errors = (checked as { stdout: string }).stdout
        .split("\n")
        .filter((line) => /error TS/.test(line));
      const ours = errors.filter((line) => !/^node_modules\/(bun-types|@types\/node)\//.test(line));
      expect(ours).toEqual([]);
      // The filter must not hide everything: the consumer's own mistakes are still seen.
      await writeFile(join(dir, "wrong.ts"), `import { bun } from "socketapi/bun";\nbun(1);\n`);
      await writeFile(
        join(dir, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: { ...strict, ...resolutions.bundler, lib: ["ES2023"], types: ["bun"] },
          include: ["consumer.ts", "wrong.ts"],
        }),
      );
      const wrong = await run(process.execPath, [tsc, "-p", dir]).catch(
        (error: { stdout: string }) => error,
      );
      expect((wrong as { stdout: string }).stdout).toMatch(/wrong\.ts\(2,5\): error TS2345/);
    });

    it("accepts a strict consumer of socketapi/cloudflare with the Workers types", async () => {
      const dir = join(project, `ts-workers-${tsc.includes("typescript5") ? 5 : 7}`);
      await mkdir(dir, { recursive: true });
      await writeFile(
        join(dir, "consumer.ts"),
        `import { SocketAPI } from "socketapi";
import { cloudflare } from "socketapi/cloudflare";
const app = new SocketAPI().action("hello", () => "hi");
const { worker, SocketAPIObject } = cloudflare(app);
export default worker;
export { SocketAPIObject };
`,
      );
      await writeFile(
        join(dir, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            ...strict,
            ...resolutions.bundler,
            lib: ["ES2023"],
            types: ["@cloudflare/workers-types"],
          },
          include: ["consumer.ts"],
        }),
      );
      const checked = await run(process.execPath, [tsc, "-p", dir]).catch(
        (error: { stdout: string }) => error,
      );
      expect((checked as { stdout: string }).stdout).toBe("");
    });
  });
});
