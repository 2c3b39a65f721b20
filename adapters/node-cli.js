#!/usr/bin/env node
// The `socketapi` command: serves the app a TypeScript (or JavaScript) module
// default-exports, on Node, as `uvicorn main:app --reload` does for SocketAPI 0.2.
//
//   npx socketapi examples/main.ts [--port 8000] [--host 127.0.0.1] [--path /ws] [--watch]
//
// Plain JavaScript, because Node 20 cannot run TypeScript itself: tsx is registered first,
// then the app module and the Node adapter are loaded through it.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const usage = `Usage: socketapi MODULE [--port N] [--host HOST] [--path PATH] [--watch]

Serves the SocketAPI app that MODULE exports as default (or as \`app\`).
  --port   port to listen on (default: $PORT or 8000)
  --host   interface to listen on (default: 127.0.0.1; 0.0.0.0 for every interface)
  --path   serve WebSocket upgrades only on this path (default: every path)
  --watch  restart when the module or a file it imports changes`;

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      port: { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      path: { type: "string" },
      watch: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
} catch (error) {
  console.error(`${error.message}\n\n${usage}`);
  process.exit(2);
}
const { values, positionals } = parsed;
if (values.help || positionals.length !== 1) {
  console.error(usage);
  process.exit(values.help ? 0 : 2);
}

const port = Number(values.port ?? process.env.PORT ?? 8000);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`Invalid port: ${values.port ?? process.env.PORT}`);
  process.exit(2);
}

if (values.watch) {
  // tsx's watch mode restarts this command (without --watch) when an imported file changes.
  const tsxCli = createRequire(import.meta.url).resolve("tsx/cli");
  const args = process.argv.slice(2).filter((arg) => arg !== "--watch");
  const child = spawn(
    process.execPath,
    [tsxCli, "watch", "--clear-screen=false", fileURLToPath(import.meta.url), ...args],
    { stdio: "inherit" },
  );
  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
  child.on("exit", (code) => process.exit(code ?? 0));
} else {
  // Both hooks: a .ts file outside a `"type": "module"` package loads as CommonJS.
  const [esm, cjs] = await Promise.all([import("tsx/esm/api"), import("tsx/cjs/api")]);
  esm.register();
  cjs.register();
  const module = await import(pathToFileURL(resolve(positionals[0])).href);
  // A CommonJS-loaded module nests its exports under `default`.
  const isApp = (value) => typeof value?.admit === "function" && typeof value?.open === "function";
  const app = [module.default, module.app, module.default?.default, module.default?.app].find(
    isApp,
  );
  if (!app) {
    console.error(`${positionals[0]} must export a SocketAPI app as default (or as \`app\`).`);
    process.exit(1);
  }
  const { serve } = await import("./node.ts");
  const server = await serve(app, {
    port,
    host: values.host,
    ...(values.path ? { path: values.path } : {}),
  });
  console.log(`SocketAPI: serving ${positionals[0]} at ${server.url}`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await server.close();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
