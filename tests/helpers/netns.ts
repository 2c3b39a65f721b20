// Hosts on one machine: each a network namespace of its own (`ip netns`), joined to a
// bridge in the test's namespace by a veth pair, so that what crosses between them goes
// over a link the test can degrade: packets dropped at random or all of them (iptables
// inside the host's namespace, by peer address and port). Needs root and iproute2;
// iptables (Debian's package) is installed when missing.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";

/** A host: a namespace with one address on the bridge. */
export interface Host {
  readonly name: string;
  /** The namespace's name (`ip netns exec NAME ...`). */
  readonly namespace: string;
  readonly address: string;
  /** Starts `command` inside the host's namespace. */
  spawn(command: readonly string[], env?: Record<string, string>): ChildProcess;
  /**
   * Drops each packet between this host and `peer` (both ways; only those of TCP `port` on
   * the peer's side when given) with `probability` (1: a partition). Replaces what was set
   * for that peer before; 0 heals.
   */
  drop(peer: { address: string; port?: number }, probability: number): void;
}

/** Hosts joined by a bridge; the test's own namespace is at `gateway` on it. */
export interface Network {
  /** The test's address on the bridge: how the hosts reach the test's processes. */
  readonly gateway: string;
  readonly hosts: Readonly<Record<string, Host>>;
  /** Kills what runs in the hosts and removes them and the bridge. */
  remove(): Promise<void>;
}

/** Why hosts cannot be made here, or `undefined` when they can. */
export function whyNoNamespaces(): string | undefined {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "network namespaces need root";
  try {
    execFileSync("ip", ["netns", "list"], { stdio: "ignore" });
  } catch {
    return "iproute2's ip is not installed";
  }
  if (!iptables()) return "iptables is not installed (apt-get install iptables)";
  return undefined;
}

/** iptables, installed with apt-get when missing (as root); `undefined` when it cannot be. */
function iptables(): string | undefined {
  const paths = ["/usr/sbin/iptables", "/sbin/iptables", "/usr/bin/iptables"];
  const found = () => paths.find((path) => existsSync(path));
  if (!found() && process.getuid?.() === 0) {
    try {
      execFileSync("apt-get", ["update"], { stdio: "ignore", timeout: 300_000 });
      execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "iptables"], {
        stdio: "ignore",
        timeout: 600_000,
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      });
    } catch {
      return undefined;
    }
  }
  return found();
}

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/**
 * Makes one host per name on a bridge of its own, 10.X.Y.0/24 with X.Y from this process's
 * id (the test is at .1, the hosts at .2, .3, ...).
 *
 * @example
 * const network = await makeNetwork(["broker", "a"]);
 * network.hosts.a.drop({ address: network.hosts.broker.address }, 0.1); // 10 % loss
 */
export async function makeNetwork(names: readonly string[]): Promise<Network> {
  const tag = `sa${process.pid % 100_000}`;
  const subnet = `10.${200 + ((process.pid >> 8) % 50)}.${process.pid % 250}`;
  const bridge = `${tag}br`;
  const gateway = `${subnet}.1`;
  const children = new Set<ChildProcess>();
  const made: string[] = [];
  const remove = async () => {
    await Promise.all(
      [...children].map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, "exit");
        child.kill("SIGKILL");
        await exited;
      }),
    );
    for (const namespace of made) {
      try {
        ip("netns", "del", namespace);
      } catch {}
    }
    try {
      ip("link", "del", bridge);
    } catch {}
    try {
      execFileSync("iptables", ["-D", "FORWARD", ...forward], { stdio: "ignore" });
    } catch {}
  };
  // Between two hosts, the bridge forwards; with br_netfilter loaded, the test's own
  // namespace's FORWARD chain sees those packets (Docker sets its policy to DROP).
  const forward = ["-i", bridge, "-o", bridge, "-j", "ACCEPT"];
  try {
    // Left by a run of this process id that was killed: start clean.
    await remove();
    ip("link", "add", bridge, "type", "bridge");
    ip("addr", "add", `${gateway}/24`, "dev", bridge);
    ip("link", "set", bridge, "up");
    execFileSync("iptables", ["-I", "FORWARD", ...forward], { stdio: "ignore" });
    const hosts: Record<string, Host> = {};
    names.forEach((name, i) => {
      const namespace = `${tag}-${name}`;
      const address = `${subnet}.${i + 2}`;
      const outside = `${tag}h${i}`;
      ip("netns", "add", namespace);
      made.push(namespace);
      ip("link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", namespace);
      ip("link", "set", outside, "master", bridge, "up");
      ip("-n", namespace, "addr", "add", `${address}/24`, "dev", "eth0");
      ip("-n", namespace, "link", "set", "eth0", "up");
      ip("-n", namespace, "link", "set", "lo", "up");
      const rules = new Map<string, string[][]>();
      const table = (args: string[]) =>
        execFileSync("ip", ["netns", "exec", namespace, "iptables", ...args], {
          stdio: ["ignore", "ignore", "pipe"],
        });
      hosts[name] = {
        name,
        namespace,
        address,
        spawn(command, env = {}) {
          const child = spawn("ip", ["netns", "exec", namespace, ...command], {
            env: { ...process.env, ...env },
            stdio: ["ignore", "pipe", "pipe"],
          });
          children.add(child);
          child.once("exit", () => children.delete(child));
          return child;
        },
        drop(peer, probability) {
          const key = `${peer.address}:${peer.port ?? ""}`;
          for (const rule of rules.get(key) ?? []) table(["-D", ...rule]);
          rules.delete(key);
          if (probability <= 0) return;
          const chance =
            probability >= 1
              ? []
              : ["-m", "statistic", "--mode", "random", "--probability", String(probability)];
          const port = (side: "--dport" | "--sport") =>
            peer.port === undefined ? [] : ["-p", "tcp", side, String(peer.port)];
          const added = [
            ["OUTPUT", "-d", peer.address, ...port("--dport"), ...chance, "-j", "DROP"],
            ["INPUT", "-s", peer.address, ...port("--sport"), ...chance, "-j", "DROP"],
          ];
          for (const rule of added) table(["-A", ...rule]);
          rules.set(key, added);
        },
      };
    });
    return { gateway, hosts, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}
