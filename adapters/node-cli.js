#!/usr/bin/env node
// The `socketapi` command: serves the app a module default-exports, on Node, as
// `uvicorn main:app --reload` does for SocketAPI 0.2.
//
//   npx socketapi main.ts [--port 8000] [--host 127.0.0.1] [--path /ws] [--watch]
//
// Plain JavaScript, so that it runs on every Node. A TypeScript module is loaded through
// tsx when it is installed (an optional peer dependency), else through Node's own type
// stripping (Node 23.6 and later, or 22.6 with --experimental-strip-types).
import { spawn } from "node:child_process";
import { extname, resolve } from "node:path";
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

const modulePath = resolve(positionals[0]);
const isTypeScript = [".ts", ".mts", ".cts", ".tsx"].includes(extname(modulePath));
/** The URL of tsx's entry point, when tsx is installed where this package can import it. */
function findTsx(subpath) {
  try {
    return import.meta.resolve(`tsx/${subpath}`);
  } catch {
    return undefined;
  }
}

const nodeStripsTypes = Boolean(process.features?.typescript);
const tsxCli = findTsx("cli");

if (isTypeScript && !tsxCli && !nodeStripsTypes) {
  console.error(
    `${positionals[0]} is TypeScript, which this Node (${process.version}) cannot load by itself.\n` +
      "Install tsx next to socketapi (npm install --save-dev tsx), or use Node 23.6 or later\n" +
      "(on Node 22.6, run: node --experimental-strip-types node_modules/.bin/socketapi ...).",
  );
  process.exit(1);
}

if (values.watch) {
  // Restart this command (without --watch) when the module or a file it imports changes:
  // with tsx's watch mode for TypeScript, else with Node's own.
  const args = process.argv.slice(2).filter((arg) => arg !== "--watch");
  const self = fileURLToPath(import.meta.url);
  const command =
    isTypeScript && tsxCli
      ? [fileURLToPath(tsxCli), "watch", "--clear-screen=false", self, ...args]
      : ["--watch", ...process.execArgv, self, ...args];
  const child = spawn(process.execPath, command, { stdio: "inherit" });
  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
  child.on("exit", (code) => process.exit(code ?? 0));
} else {
  if (isTypeScript && tsxCli) {
    // Both hooks: a .ts file outside a `"type": "module"` package loads as CommonJS.
    const [esm, cjs] = await Promise.all([import(findTsx("esm/api")), import(findTsx("cjs/api"))]);
    esm.register();
    cjs.register();
  }
  const module = await import(pathToFileURL(modulePath).href);
  // A CommonJS-loaded module nests its exports under `default`.
  const isApp = (value) =>
    typeof value?.closeConnections === "function" && typeof value?.subscriberCount === "function";
  const app = [module.default, module.app, module.default?.default, module.default?.app].find(
    isApp,
  );
  if (!app) {
    console.error(`${positionals[0]} must export a SocketAPI app as default (or as \`app\`).`);
    process.exit(1);
  }
  // This package's own entry point: the built adapter when installed, the sources in its
  // repository (where tsconfig.json maps `socketapi/node` to them and tsx reads that).
  const { serve } = await import("socketapi/node");
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
