// One of the load generator processes of the scale scenario: it holds its share of the
// connections (one process may not hold 19,000: the limit of open files per process is
// 20,000) and does what bench/run.ts tells it on stdin, one command per line, answering
// one JSON line on stdout per command. Times are wall-clock milliseconds
// (performance.timeOrigin + performance.now()), comparable across the processes of one
// machine.
//
//   bun bench/scale-worker.ts '{"url":"ws://127.0.0.1:9000/","protocol":"socketapi","share":4750}'
//
// Commands: `connect`, `subscribe`, `arm` (then `delivered` when every subscriber has the
// next broadcast), `publish` (one broadcast from this process's first connection),
// `actions <connections> <inflight> <seconds>`, `close`.
import { createInterface } from "node:readline";
import { connect, type Driver, type DriverOptions } from "./drivers.ts";

interface Options extends DriverOptions {
  url: string;
  /** How many connections this process holds. */
  share: number;
}

const options = JSON.parse(process.argv[2] ?? "{}") as Options;
const now = () => performance.timeOrigin + performance.now();
const reply = (message: Record<string, unknown>) => console.log(JSON.stringify(message));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let drivers: Driver[] = [];
/** Deliveries still awaited since the last `arm`. */
let remaining = 0;

const commands: Record<string, (args: number[]) => Promise<void>> = {
  async connect() {
    const started = now();
    drivers = await connect(options.share, [options.url], options);
    reply({ connected: drivers.length, started, finished: now() });
  },
  async subscribe() {
    const started = now();
    await Promise.all(
      drivers.map((driver) =>
        driver.subscribe(() => {
          if (--remaining === 0) reply({ delivered: now() });
        }),
      ),
    );
    reply({ subscribed: drivers.length, started, finished: now() });
  },
  async arm() {
    remaining = drivers.length;
    reply({ armed: remaining });
  },
  async publish() {
    const sent = now();
    await (drivers[0] as Driver).broadcast(1);
    reply({ published: sent });
  },
  /** Round trips answered on the first `connections` connections, `inflight` each. */
  async actions([connections = 1, inflight = 1, seconds = 1]) {
    let counting = true;
    let answered = 0;
    let stopped = false;
    for (const driver of drivers.slice(0, connections)) {
      const loop = (sum: number) => {
        if (counting) answered++;
        if (!stopped) driver.add(sum % 1000, 1, loop);
      };
      for (let i = 0; i < inflight; i++) driver.add(i, 1, loop);
    }
    const started = now();
    await sleep(seconds * 1000);
    counting = false;
    const elapsed = now() - started;
    stopped = true;
    await sleep(100);
    reply({ answered, seconds: elapsed / 1000 });
  },
  async close() {
    for (const driver of drivers) driver.close();
    await sleep(100);
    reply({ closed: drivers.length });
    process.exit(0);
  },
};

for await (const line of createInterface({ input: process.stdin })) {
  const [name = "", ...args] = line.trim().split(/\s+/);
  const command = commands[name];
  if (!command) reply({ error: `unknown command ${name}` });
  else await command(args.map(Number));
}
