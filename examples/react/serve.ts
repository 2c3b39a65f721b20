/**
 * Builds the page with Vite (into examples/react/dist) and serves it with the chat server
 * on one port: the page at `/`, the WebSocket at `/ws`.
 *
 *   npm run start:react                  # http://127.0.0.1:8002/?name=ada
 *   PORT=9000 npm run start:react
 */
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join, normalize, resolve } from "node:path";
import { attach } from "socketapi/node";
import { build } from "vite";
import app from "./server.ts";

const here = resolve(import.meta.dirname);
const dist = join(here, "dist");
const root = resolve(here, "..", "..");

/** `socketapi/...` resolves to this checkout's sources, as tsconfig.json's paths say. */
async function aliases(): Promise<{ find: RegExp; replacement: string }[]> {
  const paths: Record<string, [string]> = JSON.parse(
    await readFile(join(root, "tsconfig.json"), "utf8"),
  ).compilerOptions.paths;
  return Object.entries(paths).map(([name, [file]]) => ({
    find: new RegExp(`^${name}$`),
    replacement: join(root, file),
  }));
}

/** Builds the page; resolves once dist/ holds it. */
export async function buildPage(): Promise<void> {
  await build({
    root: here,
    logLevel: "warn",
    resolve: { alias: await aliases() },
    build: { outDir: dist, emptyOutDir: true },
  });
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/** Serves the built page and the chat server on `port`; resolves with the server. */
export async function servePage(port: number, host = "127.0.0.1") {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const file = normalize(join(dist, path === "/" ? "index.html" : path));
    if (!file.startsWith(dist)) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end("Not Found\n");
    }
  });
  const attachment = attach(app, server, { path: "/ws" });
  await new Promise<void>((done) => server.listen(port, host, done));
  const address = server.address() as { port: number };
  return {
    port: address.port,
    async close() {
      await attachment.close();
      await new Promise((done) => server.close(done));
    },
  };
}

if (import.meta.main ?? process.argv[1] === import.meta.filename) {
  await buildPage();
  const { port } = await servePage(Number(process.env.PORT ?? 8002));
  console.log(`chat at http://127.0.0.1:${port}/?name=ada (WebSocket ws://127.0.0.1:${port}/ws)`);
}
