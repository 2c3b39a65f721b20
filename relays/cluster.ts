/**
 * Every core of one machine: Node processes made by `node:cluster` share one port, and the
 * primary process carries broadcasts between them over the IPC channels it already has
 * with them, to the workers that have subscribers of the channel only. No server to
 * install; `socketapi main.ts --workers 4` does all of it.
 *
 * @module
 */
import cluster, { type Worker } from "node:cluster";
import {
  type BrokerLink,
  BrokerRelay,
  type BrokerRelayOptions,
  type LinkEvents,
  type Relay,
} from "../src/adapter.ts";

/** The messages between a worker's relay and the primary, told apart from others by `socketapi`. */
type ClusterMessage =
  | { socketapi: "hello"; id: number }
  | { socketapi: "welcome"; id: number }
  | { socketapi: "join"; id: number; channels: string[] }
  | { socketapi: "joined"; id: number }
  | { socketapi: "leave"; channel: string }
  | { socketapi: "publish"; channel: string; frame: string }
  | { socketapi: "message"; channel: string; frame: string };

function isClusterMessage(message: unknown): message is ClusterMessage {
  return typeof (message as { socketapi?: unknown } | null)?.socketapi === "string";
}

/** How long a worker waits for the primary's answer at start-up. */
const HELLO_TIMEOUT_MS = 5000;

/**
 * The relay of a worker of `node:cluster`: broadcasts go to the primary, which passes them
 * on to the other workers with subscribers of the channel. The primary must route them
 * ({@link routeClusterBroadcasts}); a worker whose primary does not fails its start,
 * saying so.
 *
 * @example
 * ```ts
 * import cluster from "node:cluster";
 * import { SocketAPI } from "socketapi";
 * import { clusterRelay, routeClusterBroadcasts, serve } from "socketapi/node";
 *
 * if (cluster.isPrimary) {
 *   routeClusterBroadcasts();
 *   for (let i = 0; i < 4; i++) cluster.fork();
 * } else {
 *   const app = new SocketAPI({ relay: clusterRelay() }).action("ping", () => "pong");
 *   await serve(app, { port: 8000 });
 * }
 * ```
 */
export function clusterRelay(options: BrokerRelayOptions = {}): Relay {
  return new BrokerRelay(new ClusterLink(), options);
}

/** A worker's side: the IPC channel to the primary as a broker. */
class ClusterLink implements BrokerLink {
  readonly name = "the cluster's primary process";
  #nextId = 0;
  readonly #waiting = new Map<number, () => void>();
  #listener: ((message: unknown) => void) | undefined;
  #disconnected: (() => void) | undefined;

  async connect(events: LinkEvents): Promise<void> {
    if (!process.send || cluster.isPrimary) {
      throw new Error(
        "socketapi: clusterRelay() runs in a worker of node:cluster; in a single process " +
          "the app needs no relay.",
      );
    }
    this.#listener = (message) => {
      if (!isClusterMessage(message)) return;
      if (message.socketapi === "message") events.message(message.channel, message.frame);
      else if (message.socketapi === "welcome" || message.socketapi === "joined") {
        this.#waiting.get(message.id)?.();
        this.#waiting.delete(message.id);
      }
    };
    this.#disconnected = () => events.down(new Error("The cluster's primary process went away"));
    process.on("message", this.#listener);
    process.once("disconnect", this.#disconnected);
    const id = this.#nextId++;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        this.#waiting.set(id, resolve);
        timer = setTimeout(
          () =>
            reject(
              new Error(
                "socketapi: the cluster's primary process does not route broadcasts: call " +
                  "routeClusterBroadcasts() from socketapi/node in it before forking.",
              ),
            ),
          HELLO_TIMEOUT_MS,
        );
        this.#send({ socketapi: "hello", id });
      });
    } catch (error) {
      this.#waiting.delete(id);
      await this.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  subscribe(channels: readonly string[]): Promise<void> {
    const id = this.#nextId++;
    return new Promise<void>((resolve, reject) => {
      this.#waiting.set(id, resolve);
      this.#send({ socketapi: "join", id, channels: [...channels] }).catch((error: unknown) => {
        this.#waiting.delete(id);
        reject(error);
      });
    });
  }

  async unsubscribe(channel: string): Promise<void> {
    await this.#send({ socketapi: "leave", channel });
  }

  publish(channel: string, frame: string): Promise<void> {
    return this.#send({ socketapi: "publish", channel, frame });
  }

  async close(): Promise<void> {
    if (this.#listener) process.off("message", this.#listener);
    if (this.#disconnected) process.off("disconnect", this.#disconnected);
    this.#listener = undefined;
  }

  /** Resolves once the message is written to the IPC channel. */
  #send(message: ClusterMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!process.connected || !process.send) {
        reject(new Error("The cluster's primary process went away"));
        return;
      }
      process.send(message, undefined, {}, (error: Error | null) =>
        error ? reject(error) : resolve(),
      );
    });
  }
}

/** Options of {@link routeClusterBroadcasts}. */
export interface ClusterRoutingOptions {
  /**
   * How many bytes of broadcasts may wait for one worker to read them; more are dropped for
   * that worker (and reported) rather than held. Default 8 MiB.
   */
  maxPendingBytes?: number | undefined;
  /** Told when a worker does not keep up; default `console.error`. */
  onError?: ((error: Error) => void) | undefined;
}

/**
 * In the primary process of `node:cluster`: carries each broadcast a worker publishes to
 * the other workers that have subscribers of its channel, and to no other. Returns a
 * function that stops it.
 *
 * @example
 * ```ts
 * if (cluster.isPrimary) {
 *   routeClusterBroadcasts();
 *   for (let i = 0; i < 4; i++) cluster.fork();
 * }
 * ```
 */
export function routeClusterBroadcasts(options: ClusterRoutingOptions = {}): () => void {
  const maxPendingBytes = options.maxPendingBytes ?? 8 * 1024 * 1024;
  const report =
    options.onError ?? ((error: Error) => console.error(`[socketapi] ${error.message}`));
  /** Per channel, the workers with subscribers of it. */
  const interest = new Map<string, Set<Worker>>();
  /** Per worker, the bytes sent to it that it has not read yet. */
  const pending = new Map<Worker, number>();
  /** Workers told about as not keeping up, until they catch up. */
  const stalled = new Set<Worker>();

  const forward = (worker: Worker, message: ClusterMessage, size: number): void => {
    const waiting = pending.get(worker) ?? 0;
    if (waiting + size > maxPendingBytes) {
      if (!stalled.has(worker)) {
        stalled.add(worker);
        report(
          new Error(
            `Worker ${worker.id} is not reading broadcasts as fast as they come (${waiting} ` +
              "bytes waiting): broadcasts to it are being dropped.",
          ),
        );
      }
      return;
    }
    pending.set(worker, waiting + size);
    worker.send(message, undefined, { keepOpen: false }, () => {
      const left = (pending.get(worker) ?? size) - size;
      pending.set(worker, left);
      if (left === 0) stalled.delete(worker);
    });
  };

  const onMessage = (worker: Worker, message: unknown): void => {
    if (!isClusterMessage(message)) return;
    switch (message.socketapi) {
      case "hello":
        worker.send({ socketapi: "welcome", id: message.id } satisfies ClusterMessage);
        break;
      case "join":
        for (const channel of message.channels) {
          let workers = interest.get(channel);
          if (!workers) {
            workers = new Set();
            interest.set(channel, workers);
          }
          workers.add(worker);
        }
        worker.send({ socketapi: "joined", id: message.id } satisfies ClusterMessage);
        break;
      case "leave": {
        const workers = interest.get(message.channel);
        workers?.delete(worker);
        if (workers?.size === 0) interest.delete(message.channel);
        break;
      }
      case "publish": {
        const workers = interest.get(message.channel);
        if (!workers) break;
        const out: ClusterMessage = {
          socketapi: "message",
          channel: message.channel,
          frame: message.frame,
        };
        for (const target of workers) {
          if (target !== worker) forward(target, out, message.frame.length);
        }
        break;
      }
    }
  };

  const onExit = (worker: Worker): void => {
    for (const [channel, workers] of interest) {
      workers.delete(worker);
      if (workers.size === 0) interest.delete(channel);
    }
    pending.delete(worker);
    stalled.delete(worker);
  };

  cluster.on("message", onMessage);
  cluster.on("exit", onExit);
  return () => {
    cluster.off("message", onMessage);
    cluster.off("exit", onExit);
  };
}
