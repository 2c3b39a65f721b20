// A TCP proxy that holds what crosses it for a while, each way: latency with jitter, for
// a kernel without netem. Order is kept (a chunk never leaves before the one read before
// it), and so is backpressure: past 256 KiB held one way, it stops reading that way.
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";

/** The proxy's listening side and the delay it adds now. */
export interface DelayProxy {
  readonly port: number;
  /** Each chunk waits `ms` plus up to `jitter` ms more, at random; 0 and 0 pass at once. */
  setDelay(ms: number, jitter?: number): void;
  close(): Promise<void>;
}

const HELD_BYTES = 256 * 1024;

/**
 * Listens on `host` (a free port) and passes each connection on to `target`.
 *
 * @example
 * const proxy = await delayProxy("10.200.1.1", { host: "10.200.1.2", port: 6379 });
 * proxy.setDelay(50, 10); // 50-60 ms each way
 */
export async function delayProxy(
  host: string,
  target: { host: string; port: number },
): Promise<DelayProxy> {
  let delay = 0;
  let jitter = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
      socket.on("close", () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    pass(client, upstream);
    pass(upstream, client);
  });
  /** What `from` sends reaches `to` after the delay, in order, with backpressure. */
  const pass = (from: Socket, to: Socket) => {
    const queue: { at: number; chunk: Buffer }[] = [];
    let held = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = () => {
      timer = undefined;
      let flowing = true;
      while (queue.length > 0 && (queue[0]?.at ?? 0) <= Date.now()) {
        const { chunk } = queue.shift() as { chunk: Buffer };
        held -= chunk.length;
        if (!to.destroyed) flowing = to.write(chunk);
      }
      if (flowing && held <= HELD_BYTES) from.resume();
      const next = queue[0];
      if (next) timer = setTimeout(flush, Math.max(0, next.at - Date.now()));
    };
    from.on("data", (chunk: Buffer) => {
      const wait = delay + (jitter > 0 ? Math.random() * jitter : 0);
      if (wait <= 0 && queue.length === 0) {
        if (!to.write(chunk)) from.pause();
        return;
      }
      // Never before the one read before it.
      const at = Math.max(Date.now() + wait, queue.at(-1)?.at ?? 0);
      queue.push({ at, chunk });
      held += chunk.length;
      if (held > HELD_BYTES) from.pause();
      timer ??= setTimeout(flush, Math.max(0, (queue[0]?.at ?? at) - Date.now()));
    });
    from.on("close", () => {
      if (timer !== undefined) clearTimeout(timer);
    });
    to.on("drain", () => {
      if (held <= HELD_BYTES) from.resume();
    });
  };
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    setDelay(ms, more = 0) {
      delay = ms;
      jitter = more;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
