#!/usr/bin/env node
// The `socketapi` command: serves the app a module default-exports, on Node, as
// `uvicorn main:app --reload` does for SocketAPI 0.2.
//
//   npx socketapi main.ts [--port 8000] [--host 127.0.0.1] [--path /ws] [--watch]
//                         [--workers N] [--redis URL | --redis-cluster NODES |
//                         --redis-sentinel SENTINELS | --nats URLS] [--prefix PREFIX]
//                         [--docs] [--admin] [--metrics PORT]
//   npx socketapi main.ts --asyncapi asyncapi.json
//
// Plain JavaScript, so that it runs on every Node. A TypeScript module is loaded through
// tsx when it is installed (an optional peer dependency), else through Node's own type
// stripping (Node 23.6 and later, or 22.6 with --experimental-strip-types).
import { spawn } from "node:child_process";
import cluster from "node:cluster";
import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { extname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const usage = `Usage: socketapi MODULE [--port N] [--host HOST] [--path PATH] [--watch]
                         [--workers N] [--redis URL | --redis-cluster NODES |
                         --redis-sentinel SENTINELS | --nats URLS] [--prefix PREFIX]
                         [--docs] [--admin] [--metrics PORT]
       socketapi MODULE --asyncapi FILE

Serves the SocketAPI app that MODULE exports as default (or as \`app\`).
  --port     port to listen on (default: $PORT or 8000)
  --host     interface to listen on (default: 127.0.0.1; 0.0.0.0 for every interface)
  --path     serve WebSocket upgrades only on this path (default: every path)
  --watch    restart when the module or a file it imports changes
  --workers  N processes on the same port (node:cluster), or \`auto\` for one per core;
             broadcasts go between them through the primary process, or the broker below
  --redis    carry broadcasts between instances over Redis (needs ioredis installed)
  --redis-cluster  over a Redis Cluster: some of its nodes, [user:password@]host:port,...
  --redis-sentinel over the Redis that Sentinels watch:
             [user:password@]host:port,...[/name] (name default: mymaster)
  --nats     carry broadcasts between instances over NATS (needs @nats-io/transport-node);
             several servers of a cluster separated by commas
  --prefix   the relay's prefix, so that several apps share one broker (default:
             socketapi: for Redis, socketapi for NATS); instances meet only under one prefix
  --docs     serve the docs page at /docs and the AsyncAPI document at /asyncapi.json
  --admin    serve the live dashboard at /admin, for the token in $SOCKETAPI_ADMIN_TOKEN
             (at least 16 characters); without it, a random one, printed with the address
  --asyncapi write the app's AsyncAPI 3.0 document to FILE (- for stdout) and exit
  --metrics  serve OpenTelemetry metrics as Prometheus text at http://127.0.0.1:PORT/metrics
             (needs @opentelemetry/sdk-metrics and @opentelemetry/exporter-prometheus);
             with --workers, worker N of them on PORT + N - 1`;

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      port: { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      path: { type: "string" },
      watch: { type: "boolean", default: false },
      workers: { type: "string" },
      redis: { type: "string" },
      "redis-cluster": { type: "string" },
      "redis-sentinel": { type: "string" },
      nats: { type: "string" },
      prefix: { type: "string" },
      docs: { type: "boolean", default: false },
      admin: { type: "boolean", default: false },
      asyncapi: { type: "string" },
      metrics: { type: "string" },
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

// The dashboard's token: the environment's, or one made here and handed to the processes
// this one starts (--watch's, --workers'), which inherit the environment.
const adminTokenMade = values.admin && !process.env.SOCKETAPI_ADMIN_TOKEN;
if (adminTokenMade) {
  process.env.SOCKETAPI_ADMIN_TOKEN = randomBytes(24).toString("base64url");
  process.env.SOCKETAPI_ADMIN_TOKEN_MADE = "1";
}

const workers = values.workers === "auto" ? availableParallelism() : Number(values.workers ?? 1);
if (!Number.isInteger(workers) || workers < 1) {
  console.error(`Invalid --workers: ${values.workers} (a number, or auto)`);
  process.exit(2);
}
const metricsPort = values.metrics === undefined ? undefined : Number(values.metrics);
if (
  metricsPort !== undefined &&
  (!Number.isInteger(metricsPort) || metricsPort < 1 || metricsPort > 65535)
) {
  console.error(`Invalid --metrics port: ${values.metrics}`);
  process.exit(2);
}
/** The broker options given: at most one may be. */
const brokerFlags = ["redis", "redis-cluster", "redis-sentinel", "nats"].filter(
  (flag) => values[flag] !== undefined,
);
/** `redis` or `nats`: the kind of broker given, if one is. */
const brokerKind = brokerFlags[0]?.startsWith("redis") ? "redis" : brokerFlags[0];
if (values.prefix !== undefined && brokerFlags.length === 0) {
  console.error("--prefix is the relay's: give it with --redis or --nats.");
  process.exit(2);
}
if (brokerFlags.length > 1) {
  console.error(`Give one broker, not several: ${brokerFlags.map((f) => `--${f}`).join(", ")}.`);
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
} else if (workers > 1 && cluster.isPrimary && values.asyncapi === undefined) {
  await registerTsx();
  await runPrimary();
} else {
  await registerTsx();
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
  if (values.asyncapi !== undefined) {
    const document = `${JSON.stringify(await app.asyncapi(), null, 2)}\n`;
    if (values.asyncapi === "-") process.stdout.write(document);
    else {
      const { writeFile } = await import("node:fs/promises");
      await writeFile(values.asyncapi, document);
      console.log(
        `SocketAPI: wrote the AsyncAPI document of ${positionals[0]} to ${values.asyncapi}`,
      );
    }
    process.exit(0);
  }
  // Metrics first: the app makes its instruments with its first connection, from the
  // provider set then.
  if (metricsPort !== undefined)
    await serveMetrics(metricsPort + Number(process.env.SOCKETAPI_WORKER_SLOT ?? 0));
  // This package's own entry points: the built ones when installed, the sources in its
  // repository (where tsconfig.json maps `socketapi/*` to them and tsx reads that).
  const { serve, clusterRelay } = await import("socketapi/node");
  const { hubOf } = await import("socketapi/adapter");
  const hub = hubOf(app);
  let relay = await brokerRelay();
  if (!relay && cluster.isWorker && !hub.relay) relay = clusterRelay();
  if (relay && hub.relay) {
    console.error(`${positionals[0]}'s app has a relay already (its \`relay\` option).`);
    process.exit(1);
  }
  if (relay) hub.useRelay(relay);
  let server;
  try {
    server = await serve(app, {
      port,
      host: values.host,
      ...(values.path ? { path: values.path } : {}),
      ...(values.docs ? { docs: true } : {}),
      ...(values.admin ? { admin: { token: process.env.SOCKETAPI_ADMIN_TOKEN ?? "" } } : {}),
    });
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  }
  if (!cluster.isWorker && values.docs) {
    console.log(`SocketAPI: docs at http://${new URL(server.url).host}/docs`);
  }
  if (!cluster.isWorker && values.admin) announceAdmin(new URL(server.url).host);
  if (!cluster.isWorker) {
    const over = brokerKind
      ? ` (relay: ${brokerKind === "redis" ? "Redis" : "NATS"}, prefix ${JSON.stringify(values.prefix ?? (brokerKind === "redis" ? "socketapi:" : "socketapi"))})`
      : "";
    console.log(`SocketAPI: serving ${positionals[0]} at ${server.url}${over}`);
  }
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

/**
 * `[user:password@]host:port,host:port[/name]` as the Redis relay takes it: the nodes, the
 * credentials for Redis (percent-decoded), and the name after the slash.
 */
function redisNodes(text) {
  const at = text.lastIndexOf("@");
  const credentials = at < 0 ? "" : text.slice(0, at);
  const [list = "", name] = text.slice(at + 1).split("/");
  const nodes = list
    .split(",")
    .map((node) => node.trim())
    .filter(Boolean);
  const [username, password] = credentials.includes(":")
    ? credentials.split(/:(.*)/s).map(decodeURIComponent)
    : [undefined, credentials ? decodeURIComponent(credentials) : undefined];
  const redis = {
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
  };
  return { nodes, name, redis };
}

/** The relay --redis, --redis-cluster, --redis-sentinel or --nats names (with --prefix), or undefined. */
async function brokerRelay() {
  const prefix = values.prefix === undefined ? {} : { prefix: values.prefix };
  if (values.redis) {
    return (await import("socketapi/redis")).redisRelay({ url: values.redis, ...prefix });
  }
  if (values["redis-cluster"]) {
    const { nodes, redis } = redisNodes(values["redis-cluster"]);
    return (await import("socketapi/redis")).redisRelay({ cluster: nodes, redis, ...prefix });
  }
  if (values["redis-sentinel"]) {
    const { nodes, name, redis } = redisNodes(values["redis-sentinel"]);
    return (await import("socketapi/redis")).redisRelay({
      sentinels: nodes,
      ...(name ? { sentinelName: name } : {}),
      redis,
      ...prefix,
    });
  }
  if (values.nats) {
    const url = values.nats
      .split(",")
      .map((server) => server.trim())
      .filter(Boolean);
    return (await import("socketapi/nats")).natsRelay({ url, ...prefix });
  }
  return undefined;
}

/** Prints where the dashboard is, with its token when this run made it. */
function announceAdmin(host) {
  const made = process.env.SOCKETAPI_ADMIN_TOKEN_MADE === "1";
  const token = made ? `?token=${encodeURIComponent(process.env.SOCKETAPI_ADMIN_TOKEN ?? "")}` : "";
  console.log(
    `SocketAPI: admin at http://${host}/admin${token}` +
      (made ? " (a token made for this run: set SOCKETAPI_ADMIN_TOKEN to choose your own)" : ""),
  );
}

/**
 * The primary process of `--workers N`: forks the workers (this command again, which then
 * serves), carries broadcasts between them unless a broker does, starts a worker again when
 * one dies, and stops them all on SIGINT or SIGTERM.
 */
async function runPrimary() {
  if (!brokerKind) {
    const { routeClusterBroadcasts } = await import("socketapi/node");
    routeClusterBroadcasts();
  } else {
    // The broker is tried once here, so that a bad URL is said once, not by every worker.
    const relay = await brokerRelay();
    try {
      await relay.open(
        () => {},
        () => {},
      );
    } catch (error) {
      console.error(error instanceof Error ? error.message : error);
      process.exit(1);
    }
    await relay.close();
  }
  cluster.setupPrimary({ exec: fileURLToPath(import.meta.url), args: process.argv.slice(2) });
  let stopping = false;
  let listening = 0;
  let announced = false;
  const started = new Set();
  /** Each worker has a slot, kept by the worker that replaces it (its metrics port). */
  const fork = (slot) => {
    const worker = cluster.fork({ SOCKETAPI_WORKER_SLOT: String(slot) });
    worker.slot = slot;
    worker.once("listening", (address) => {
      started.add(worker);
      listening++;
      if (!announced && listening === workers) {
        announced = true;
        const host = address.address?.includes(":") ? `[${address.address}]` : address.address;
        const url = `ws://${host ?? values.host}:${address.port}${values.path ?? "/"}`;
        console.log(`SocketAPI: serving ${positionals[0]} at ${url} (${workers} workers)`);
        if (values.admin) announceAdmin(new URL(url).host);
      }
    });
  };
  cluster.on("exit", (worker, code, signal) => {
    if (stopping) return;
    if (!started.has(worker)) {
      // It could not start (its error is printed above): neither can the others.
      stopping = true;
      for (const other of Object.values(cluster.workers ?? {})) other?.process.kill("SIGTERM");
      process.exitCode = 1;
      return;
    }
    started.delete(worker);
    console.error(
      `SocketAPI: worker ${worker.process.pid} died (${signal ?? `exit code ${code}`}); starting another`,
    );
    listening--;
    setTimeout(() => fork(worker.slot), 500);
  });
  for (let i = 0; i < workers; i++) fork(i);
  const stop = () => {
    if (stopping) return;
    stopping = true;
    const running = Object.values(cluster.workers ?? {}).filter(Boolean);
    for (const worker of running) worker.process.kill("SIGTERM");
    // Each worker closes its connections (up to 5 s); then the primary goes.
    setTimeout(() => {
      for (const worker of running) worker.process.kill("SIGKILL");
      process.exit(0);
    }, 10_000).unref();
    cluster.on("exit", () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
    });
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

/**
 * Serves the app's OpenTelemetry metrics as Prometheus text on 127.0.0.1:`port`/metrics,
 * with the SDK and the exporter loaded only now (optional dependencies).
 */
async function serveMetrics(port) {
  let sdk;
  let prometheus;
  try {
    [sdk, prometheus] = await Promise.all([
      import("@opentelemetry/sdk-metrics"),
      import("@opentelemetry/exporter-prometheus"),
    ]);
  } catch {
    console.error(
      "--metrics needs OpenTelemetry's metrics SDK and Prometheus exporter next to socketapi:\n" +
        "  npm install @opentelemetry/sdk-metrics @opentelemetry/exporter-prometheus",
    );
    process.exit(1);
  }
  const { metrics } = await import("@opentelemetry/api");
  const exporter = new prometheus.PrometheusExporter({
    host: "127.0.0.1",
    port,
    preventServerStart: true,
  });
  try {
    await exporter.startServer();
  } catch (error) {
    console.error(
      `--metrics: cannot listen on 127.0.0.1:${port}: ${error instanceof Error ? error.message : error}`,
    );
    process.exit(1);
  }
  metrics.setGlobalMeterProvider(new sdk.MeterProvider({ readers: [exporter] }));
  console.log(`SocketAPI: metrics at http://127.0.0.1:${port}/metrics`);
}

/** Loads TypeScript through tsx, when the module is TypeScript and tsx is installed. */
async function registerTsx() {
  if (!isTypeScript || !tsxCli) return;
  // Both hooks: a .ts file outside a `"type": "module"` package loads as CommonJS.
  const [esm, cjs] = await Promise.all([import(findTsx("esm/api")), import(findTsx("cjs/api"))]);
  esm.register();
  cjs.register();
}
