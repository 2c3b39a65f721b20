import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./server-process.ts";

/** A message broker the tests run themselves, on a free port, to kill and start again. */
export interface Broker {
  readonly kind: "redis" | "nats";
  readonly port: number;
  /** The URL a relay connects to (with the credentials, when it has some). */
  readonly url: string;
  /** Kills it (SIGKILL: no goodbye to its clients). */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  /** Stops it in its tracks (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void;
  /** Lets it go on (SIGCONT). */
  resume(): void;
}

/** Debian's package and binary of each broker, and of nginx. */
const BINARIES = {
  nginx: { packageName: "nginx", paths: ["/usr/sbin/nginx", "/usr/bin/nginx"] },
  redis: {
    packageName: "redis-server",
    paths: ["/usr/bin/redis-server", "/usr/local/bin/redis-server"],
  },
  nats: {
    packageName: "nats-server",
    paths: ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"],
  },
} as const;

/**
 * The broker's binary, installed with apt-get when missing and the tests run as root (as in
 * CI); otherwise the error says what to install.
 */
function binary(kind: keyof typeof BINARIES): string {
  const { packageName, paths } = BINARIES[kind];
  const found = () => paths.find((path) => existsSync(path));
  if (!found() && process.getuid?.() === 0) {
    execFileSync("apt-get", ["update"], { stdio: "ignore", timeout: 300_000 });
    execFileSync("apt-get", ["install", "-y", "--no-install-recommends", packageName], {
      stdio: "ignore",
      timeout: 600_000,
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  }
  const path = found();
  if (!path) throw new Error(`${packageName} is not installed: apt-get install ${packageName}`);
  return path;
}

/** nginx, installed with apt-get when missing and the tests run as root; else `undefined`. */
export function ensureNginx(): string | undefined {
  try {
    return binary("nginx");
  } catch {
    return undefined;
  }
}

/** A running nginx of a test's own. */
export interface Nginx {
  /** Kills it and removes its working directory. */
  stop(): Promise<void>;
}

/**
 * Starts nginx (as {@link ensureNginx} finds it) in the foreground with `servers` (the
 * `upstream` and `server` blocks a guide shows, pointed at the test's ports) as its whole
 * `http` block, in a working directory of its own; logs to stderr, none to files.
 */
export function startNginx(binaryPath: string, servers: string): Nginx {
  const work = mkdtempSync(join(tmpdir(), "socketapi-nginx-"));
  writeFileSync(
    join(work, "nginx.conf"),
    `daemon off;\npid ${work}/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n` +
      `access_log off;\nclient_body_temp_path ${work}/body;\nproxy_temp_path ${work}/proxy;\n` +
      `${servers}}\n`,
  );
  const child = spawn(binaryPath, ["-p", work, "-c", join(work, "nginx.conf")], {
    stdio: "ignore",
  });
  return {
    async stop() {
      if (child.exitCode === null) {
        const exited = once(child, "exit");
        child.kill("SIGKILL");
        await exited;
      }
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** Resolves once something listens on `port` and says hello (NATS) or answers a PING (Redis). */
async function answering(port: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => socket.write("PING\r\n"));
      socket.once("data", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
      socket.setTimeout(1000, () => {
        socket.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing answers on port ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** How a broker's command line is run: as it is, or within another (`taskset -c 0 ...`). */
export type CommandWrapper = (command: string[]) => string[];

async function run(
  kind: Broker["kind"],
  args: string[],
  port: number,
  wrap: CommandWrapper = (command) => command,
): Promise<ChildProcess> {
  const [command, ...rest] = wrap([binary(kind), ...args]) as [string, ...string[]];
  const child = spawn(command, rest, { stdio: "ignore" });
  const exited = once(child, "exit").then(([code]) => {
    throw new Error(`${kind} exited with ${code} on port ${port}`);
  });
  await Promise.race([answering(port), exited]);
  exited.catch(() => {});
  return child;
}

function broker(
  kind: Broker["kind"],
  port: number,
  url: string,
  args: string[],
  wrap?: CommandWrapper,
): Promise<Broker> {
  let child: ChildProcess | undefined;
  const self: Broker = {
    kind,
    port,
    url,
    async kill() {
      const running = child;
      child = undefined;
      if (!running || running.exitCode !== null) return;
      const exited = once(running, "exit");
      running.kill("SIGKILL");
      await exited;
    },
    async restart() {
      await self.kill();
      child = await run(kind, args, port, wrap);
    },
    pause() {
      child?.kill("SIGSTOP");
    },
    resume() {
      child?.kill("SIGCONT");
    },
  };
  return self.restart().then(() => self);
}

/** What every `redis-server` the tests run is started with: its port, loopback, no persistence. */
function redisServerArgs(port: number): string[] {
  return ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
}

/** A `redis-server` of its own, without persistence; with `password`, clients must give it. */
export async function startRedis({ password }: { password?: string } = {}): Promise<Broker> {
  const port = await freePort();
  const args = redisServerArgs(port);
  if (password) args.push("--requirepass", password);
  const url = `redis://${password ? `:${password}@` : ""}127.0.0.1:${port}`;
  return broker("redis", port, url, args);
}

/**
 * A `nats-server` of its own; with `user` and `password`, clients must give them; with
 * `monitor`, its HTTP monitoring endpoint on a free port (`monitorUrl`: `/subsz`, `/connz`).
 */
export async function startNats({
  user,
  password,
  monitor = false,
}: {
  user?: string;
  password?: string;
  monitor?: boolean;
} = {}): Promise<Broker & { readonly monitorUrl: string | undefined }> {
  const port = await freePort();
  const args = ["-a", "127.0.0.1", "-p", String(port)];
  if (user && password) args.push("--user", user, "--pass", password);
  let monitorUrl: string | undefined;
  if (monitor) {
    const monitorPort = await freePort();
    args.push("-m", String(monitorPort));
    monitorUrl = `http://127.0.0.1:${monitorPort}`;
  }
  const url = `nats://${user && password ? `${user}:${password}@` : ""}127.0.0.1:${port}`;
  return Object.assign(await broker("nats", port, url, args), { monitorUrl });
}

/** Stops every broker given, whatever state it is in. */
export async function killAll(brokers: readonly (Broker | undefined)[]): Promise<void> {
  await Promise.all(brokers.map((b) => b?.kill()));
}

/** A Redis Cluster the tests run themselves: its nodes, each a {@link Broker} of its own. */
export interface RedisCluster {
  /** Every node, primaries first (as `redis-cli --cluster create` made them). */
  readonly nodes: readonly Broker[];
  /** `host:port` of every node, for a relay's `cluster` option. */
  readonly addresses: readonly string[];
  /** The node serving `slot` as primary now, asked of the cluster. */
  primaryOf(slot: number): Promise<Broker>;
  /**
   * Resolves once every slot is served, every node alive agrees the cluster is ok and every
   * replica alive has synced with its primary.
   */
  healthy(ms?: number): Promise<void>;
  /** Kills every node. */
  kill(): Promise<void>;
}

/** `redis-cli`, beside `redis-server` in Debian's package. */
function redisCli(): string {
  return binary("redis").replace(/redis-server$/, "redis-cli");
}

/** Runs `redis-cli` with `args`; its output. */
export function redisCliRun(args: readonly string[], timeout = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(redisCli(), args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout?.on("data", (chunk) => {
      out += chunk;
    });
    child.stderr?.on("data", (chunk) => {
      out += chunk;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeout);
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`redis-cli ${args.join(" ")} exited with ${code}: ${out}`));
    });
  });
}

/**
 * A Redis Cluster of `primaries` primaries with `replicas` replicas each, on free ports
 * (each node's cluster bus on a free port of its own), without persistence, its node
 * timeout `nodeTimeout` ms so that a replica takes over from a dead primary within about
 * twice that.
 */
export async function startRedisCluster({
  primaries = 3,
  replicas = 1,
  nodeTimeout = 1000,
  wrap,
}: {
  primaries?: number;
  replicas?: number;
  nodeTimeout?: number;
  /** Runs each node's command within another (the bench pins them to a core). */
  wrap?: CommandWrapper;
} = {}): Promise<RedisCluster> {
  const directory = mkdtempSync(join(tmpdir(), "socketapi-cluster-"));
  const nodes: Broker[] = [];
  for (let i = 0; i < primaries * (1 + replicas); i++) {
    const port = await freePort();
    const busPort = await freePort();
    const args = [
      ...redisServerArgs(port),
      "--dir",
      directory,
      "--cluster-enabled",
      "yes",
      "--cluster-port",
      String(busPort),
      "--cluster-config-file",
      `nodes-${port}.conf`,
      "--cluster-node-timeout",
      String(nodeTimeout),
      // A replica syncs at once (not after the default 5 s): it can take over from then on.
      "--repl-diskless-sync-delay",
      "0",
    ];
    nodes.push(await broker("redis", port, `redis://127.0.0.1:${port}`, args, wrap));
  }
  const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);
  await redisCliRun([
    "--cluster",
    "create",
    ...addresses,
    "--cluster-replicas",
    String(replicas),
    "--cluster-yes",
  ]);
  const cluster: RedisCluster = {
    nodes,
    addresses,
    async primaryOf(slot) {
      for (const node of nodes) {
        const listing = await redisCliRun(
          ["-p", String(node.port), "cluster", "nodes"],
          2000,
        ).catch(() => undefined);
        if (listing === undefined) continue;
        // id host:port@bus flags primary-id ping pong epoch link slot-range...
        for (const line of listing.trim().split("\n")) {
          const [, address, flags, , , , , , ...ranges] = line.split(" ");
          if (!flags?.includes("master") || flags.includes("fail")) continue;
          const serves = ranges.some((range) => {
            const [from, to = from] = range.split("-").map(Number);
            return from !== undefined && to !== undefined && slot >= from && slot <= to;
          });
          const port = Number(address?.split("@")[0]?.split(":")[1]);
          const found = serves && nodes.find((candidate) => candidate.port === port);
          if (found) return found;
        }
      }
      throw new Error(`no node serves slot ${slot}`);
    },
    async healthy(ms = 30_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const states = await Promise.all(
          nodes.map((node) =>
            redisCliRun(["-p", String(node.port), "cluster", "info"], 2000).catch(() => ""),
          ),
        );
        const alive = states.filter((state) => state !== "");
        const replication = await Promise.all(
          nodes.map((node) =>
            redisCliRun(["-p", String(node.port), "info", "replication"], 2000).catch(() => ""),
          ),
        );
        // Every replica alive has its primary's data: it could take over.
        const synced = replication.every(
          (info) => !info.includes("role:slave") || info.includes("master_link_status:up"),
        );
        if (
          synced &&
          alive.length > 0 &&
          alive.every((state) => state.includes("cluster_state:ok"))
        ) {
          return;
        }
        if (Date.now() > deadline) throw new Error("the Redis Cluster did not become healthy");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async kill() {
      await killAll(nodes);
      rmSync(directory, { recursive: true, force: true });
    },
  };
  await cluster.healthy();
  return cluster;
}

/** A Redis primary with a replica, watched by three Sentinels, all run by the tests. */
export interface RedisSentinels {
  /** The primary first, then the replica, as they were started. */
  readonly redis: readonly Broker[];
  readonly sentinels: readonly Broker[];
  /** `host:port` of each Sentinel, for a relay's `sentinels` option. */
  readonly addresses: readonly string[];
  /** The name the Sentinels know the primary by. */
  readonly name: string;
  /** The Redis the Sentinels call primary now. */
  primary(): Promise<Broker>;
  kill(): Promise<void>;
}

/**
 * A primary and a replica of it, and three Sentinels (quorum two) that fail over when the
 * primary does not answer for `downAfter` ms.
 */
export async function startRedisSentinels({
  name = "mymaster",
  downAfter = 1000,
}: {
  name?: string;
  downAfter?: number;
} = {}): Promise<RedisSentinels> {
  const directory = mkdtempSync(join(tmpdir(), "socketapi-sentinel-"));
  // A replica syncs at once (not after the default 5 s), and the snapshot a full sync
  // writes goes to the test's directory, not to the working directory.
  const redisArgs = (port: number) => [
    ...redisServerArgs(port),
    "--repl-diskless-sync-delay",
    "0",
    "--dir",
    directory,
    "--dbfilename",
    `dump-${port}.rdb`,
  ];
  const primaryPort = await freePort();
  const primary = await broker(
    "redis",
    primaryPort,
    `redis://127.0.0.1:${primaryPort}`,
    redisArgs(primaryPort),
  );
  const replicaPort = await freePort();
  const replica = await broker("redis", replicaPort, `redis://127.0.0.1:${replicaPort}`, [
    ...redisArgs(replicaPort),
    "--replicaof",
    "127.0.0.1",
    String(primaryPort),
  ]);
  const sentinels: Broker[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const file = join(directory, `sentinel-${port}.conf`);
    writeFileSync(
      file,
      [
        `port ${port}`,
        "bind 127.0.0.1",
        `dir ${directory}`,
        `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${name} ${downAfter}`,
        `sentinel failover-timeout ${name} ${downAfter * 3}`,
        `sentinel parallel-syncs ${name} 1`,
        "",
      ].join("\n"),
    );
    sentinels.push(await broker("redis", port, `redis://127.0.0.1:${port}`, [file, "--sentinel"]));
  }
  const redis = [primary, replica];
  const self: RedisSentinels = {
    redis,
    sentinels,
    addresses: sentinels.map((sentinel) => `127.0.0.1:${sentinel.port}`),
    name,
    async primary() {
      for (const sentinel of sentinels) {
        const out = await redisCliRun(
          ["-p", String(sentinel.port), "sentinel", "get-master-addr-by-name", name],
          2000,
        ).catch(() => undefined);
        const port = Number(out?.trim().split("\n")[1]);
        const found = redis.find((node) => node.port === port);
        if (found) return found;
      }
      throw new Error("no Sentinel names a primary");
    },
    async kill() {
      await killAll([...sentinels, ...redis]);
      rmSync(directory, { recursive: true, force: true });
    },
  };
  // Ready once the replica has synced and every Sentinel knows of it and of the others.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const info = await redisCliRun(["-p", String(replicaPort), "info", "replication"]);
    const known = await Promise.all(
      sentinels.map((sentinel) =>
        redisCliRun(["-p", String(sentinel.port), "sentinel", "master", name]).catch(() => ""),
      ),
    );
    const ready = known.every(
      (out) => /num-slaves\n1\n/.test(out) && /num-other-sentinels\n2\n/.test(out),
    );
    if (info.includes("master_link_status:up") && ready) return self;
    if (Date.now() > deadline) throw new Error("the Sentinels did not get ready");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A NATS cluster the tests run themselves: `nats-server` nodes joined by routes. */
export interface NatsCluster {
  readonly nodes: readonly Broker[];
  /** Each node's client URL. */
  readonly urls: readonly string[];
  /** Resolves once every node has a route to every other. */
  routed(ms?: number): Promise<void>;
  kill(): Promise<void>;
}

/** `size` NATS servers on free ports, each with routes to all the others. */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const ports = await Promise.all(Array.from({ length: size }, () => freePort()));
  const clusterPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const monitorPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const nodes: Broker[] = [];
  for (let i = 0; i < size; i++) {
    const port = ports[i] as number;
    const routes = clusterPorts
      .filter((_, j) => j !== i)
      .map((clusterPort) => `nats://127.0.0.1:${clusterPort}`)
      .join(",");
    const args = [
      ...["-a", "127.0.0.1", "-p", String(port), "-m", String(monitorPorts[i])],
      ...["--cluster_name", "socketapi-test", "--cluster", `nats://127.0.0.1:${clusterPorts[i]}`],
      ...["--routes", routes],
    ];
    nodes.push(await broker("nats", port, `nats://127.0.0.1:${port}`, args));
  }
  const self: NatsCluster = {
    nodes,
    urls: nodes.map((node) => node.url),
    async routed(ms = 20_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const counts = await Promise.all(
          monitorPorts.map((port) =>
            fetch(`http://127.0.0.1:${port}/routez`)
              .then((response) => response.json() as Promise<{ num_routes: number }>)
              .then((routez) => routez.num_routes)
              .catch(() => 0),
          ),
        );
        if (counts.every((count) => count >= size - 1)) return;
        if (Date.now() > deadline) throw new Error("the NATS cluster did not form");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async kill() {
      await killAll(nodes);
    },
  };
  await self.routed();
  return self;
}
