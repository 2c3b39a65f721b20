// Closed-loop loads over `ws` clients, which the wire and dashboard benchmarks share:
// requests kept in flight (a new one for each answer), and broadcasts sent in batches,
// each waited for at every subscriber.
import type { WsClient } from "../tests/helpers/ws-client.ts";

/** Sends `frame` `requests` times, `inFlight` at a time; resolves once all are answered. */
export function keepInFlight(
  client: WsClient,
  frame: unknown,
  requests: number,
  inFlight = 16,
): Promise<void> {
  let sent = 0;
  let answered = 0;
  return new Promise<void>((done) => {
    client.ws.on("message", () => {
      answered += 1;
      if (sent < requests) {
        sent += 1;
        client.send(frame);
      } else if (answered === requests) done();
    });
    for (; sent < Math.min(inFlight, requests); sent++) client.send(frame);
  });
}

/** The frames `clients` received in all, and a wait until they received `total`. */
export interface Deliveries {
  readonly received: number;
  until(total: number): Promise<void>;
}

/** Counts what `clients` receive from now on. */
export function countDeliveries(clients: readonly WsClient[]): Deliveries {
  let received = 0;
  let wake: (() => void) | undefined;
  for (const client of clients) {
    client.ws.on("message", () => {
      received += 1;
      wake?.();
    });
  }
  return {
    get received() {
      return received;
    },
    until: (total) =>
      new Promise<void>((done) => {
        wake = () => received >= total && done();
        wake();
      }),
  };
}

/**
 * Sends `frame` (an action that broadcasts once) `broadcasts` times from `sender`, `batch` at
 * a time, each batch waited for at all `subscribers`.
 */
export async function broadcastInBatches(
  sender: WsClient,
  frame: unknown,
  broadcasts: number,
  subscribers: number,
  deliveries: Deliveries,
  batch = 20,
): Promise<void> {
  const start = deliveries.received;
  for (let sent = 0; sent < broadcasts; sent += batch) {
    for (let i = 0; i < batch; i++) sender.send(frame);
    await deliveries.until(start + (sent + batch) * subscribers);
  }
}
