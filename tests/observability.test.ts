// What a running app tells OpenTelemetry, read with the SDK's in-memory exporters after a
// scripted session over real sockets: every metric (connections, subscriptions, frames,
// errors by code, refusals by limit, action durations, fan-out, relay counters) and every
// span (actions and subscribes with their status, the upgrade's traceparent as parent, a
// broadcast made inside an action as its child).
import { context, propagation } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  MeterProvider,
  MetricReader,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import * as v from "valibot";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { type NodeServer, serve } from "../adapters/node.ts";
import { redisRelay } from "../relays/redis.ts";
import { ForbiddenError, SocketAPI } from "../src/index.ts";
import { startRedis } from "./helpers/brokers.ts";
import { root, startServer } from "./helpers/server-process.ts";
import { openClient, type WsClient } from "./helpers/ws-client.ts";

/** Collects on demand: what a Prometheus scrape or an OTLP push would read. */
class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const reader = new TestReader();
const meterProvider = new MeterProvider({ readers: [reader] });
const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({
  spanProcessors: [new SimpleSpanProcessor(spans)],
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const app = new SocketAPI({
  telemetry: { meterProvider, tracerProvider },
  allowedOrigins: ["http://good.example"],
  maxConnections: 6,
  maxSubscriptions: 2,
  maxMessageBytes: 1024,
  maxQueuedMessages: 1,
  maxBufferedBytes: 1000,
  rateLimit: { messagesPerSecond: 10, burst: 40, maxViolations: 1000 },
  onError: () => {},
})
  .action("add_numbers", { input: v.object({ a: v.number(), b: v.number() }) }, ({ a, b }) => a + b)
  .action("broken", () => {
    throw new Error("a bug");
  })
  .action("forbidden", () => {
    throw new ForbiddenError("Not you.");
  })
  .action("slow", async () => {
    await sleep(100);
    return "done";
  })
  .action("ticks", async function* () {
    for (let n = 1; n <= 3; n++) yield n;
  })
  .action("endless", async function* () {
    for (let n = 1; ; n++) {
      await sleep(5);
      yield n;
    }
  })
  .channel(
    "chat",
    { params: v.object({ message: v.optional(v.string(), "") }) },
    ({ message }) => ({ message }),
  )
  .channel(
    "rooms/{room}",
    { params: v.object({ room: v.string(), text: v.optional(v.string(), "") }) },
    ({ text }) => ({ text }),
  )
  .channel("firehose", { params: v.object({ pad: v.optional(v.string(), "") }) }, ({ pad }) => pad)
  .action("send_message", { input: v.object({ message: v.string() }) }, async (input, ctx) => {
    await ctx.channels.chat(input);
  });

let server: NodeServer;
let metrics: ResourceMetrics;
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN = "00f067aa0ba902b7";

/** The data points of a metric, by name. */
function points(name: string): DataPoint<unknown>[] {
  for (const scope of metrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name === name) return metric.dataPoints as DataPoint<unknown>[];
    }
  }
  throw new Error(`no metric ${name}`);
}

/** The value of a metric's point with exactly these attributes (0 without one). */
function value(name: string, attributes: Record<string, unknown> = {}): unknown {
  const point = points(name).find(
    (p) => JSON.stringify(p.attributes) === JSON.stringify(attributes),
  );
  return point?.value ?? 0;
}

function unitOf(name: string): string {
  for (const scope of metrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name === name) return metric.descriptor.unit;
    }
  }
  return "";
}

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  server = await serve(app, { port: 0 });
  const url = server.url;

  // One connection that does everything right, with a trace context on its upgrade.
  const main = await openClient(url, { traceparent: `00-${TRACE_ID}-${PARENT_SPAN}-01` });
  expect(
    (await main.request({ type: "action", channel: "add_numbers", data: { a: 5, b: 3 }, id: 1 }))
      .data,
  ).toBe(8);
  expect(await main.request({ type: "subscribe", channel: "chat", id: 2 })).toMatchObject({
    type: "subscribed",
  });
  expect(await main.request({ type: "subscribe", channel: "rooms/1", id: 3 })).toMatchObject({
    type: "subscribed",
  });
  main.send({ type: "action", channel: "send_message", data: { message: "hi" }, id: 4 });
  expect(await main.next()).toMatchObject({ type: "data", channel: "chat" });
  expect(await main.next()).toMatchObject({ type: "action", status: "completed", id: 4 });
  // Errors: invalid input, a handler's bug, a refusal by the handler, an unknown action.
  expect(
    (await main.request({ type: "action", channel: "add_numbers", data: { a: "x" }, id: 5 })).code,
  ).toBe("INVALID_PARAMS");
  expect((await main.request({ type: "action", channel: "broken", id: 6 })).code).toBe(
    "INTERNAL_ERROR",
  );
  expect((await main.request({ type: "action", channel: "forbidden", id: 7 })).code).toBe(
    "FORBIDDEN",
  );
  expect((await main.request({ type: "action", channel: "nope", id: 8 })).code).toBe("NOT_FOUND");
  // Refused: a third subscription, a frame over 1 KiB.
  expect((await main.request({ type: "subscribe", channel: "rooms/2", id: 9 })).code).toBe(
    "TOO_MANY_SUBSCRIPTIONS",
  );
  main.sendRaw(
    JSON.stringify({ type: "action", channel: "add_numbers", data: { pad: "x".repeat(2000) } }),
  );
  expect((await main.next()).code).toBe("MESSAGE_TOO_LARGE");
  expect(await main.request({ type: "unsubscribe", channel: "rooms/1", id: 10 })).toMatchObject({
    type: "unsubscribed",
  });
  // A stream of three chunks, and one cancelled after its first.
  main.send({ type: "action", channel: "ticks", id: 11 });
  for (let i = 0; i < 4; i++) await main.next();
  main.send({ type: "action", channel: "endless", id: 12 });
  expect(await main.next()).toMatchObject({ type: "chunk", id: 12 });
  main.send({ type: "cancel", channel: "endless", id: 12 });
  expect(await main.take((frame) => frame.type === "error" && frame.id === 12)).toMatchObject({
    code: "CANCELLED",
  });

  // Frames behind a slow one, past the queue's length.
  const queued = await openClient(url);
  for (let i = 0; i < 3; i++) queued.send({ type: "action", channel: "slow", id: i });
  const answers = [await queued.next(), await queued.next(), await queued.next()];
  expect(answers.filter((a) => a.code === "RATE_LIMITED")).toHaveLength(1);
  // Over the rate: a burst of 40, then refusals.
  const flood = await openClient(url);
  for (let i = 0; i < 45; i++)
    flood.send({ type: "action", channel: "add_numbers", data: { a: 1, b: 1 } });
  const flooded = [];
  for (let i = 0; i < 45; i++) flooded.push(await flood.next());
  expect(flooded.filter((a) => a.code === "RATE_LIMITED").length).toBeGreaterThan(0);

  // Refused upgrades: a foreign origin, then more connections than allowed.
  await expect(openClient(url, { origin: "http://evil.example" })).rejects.toMatchObject({
    status: 403,
  });
  const extra: WsClient[] = [];
  for (let i = 0; i < 3; i++) extra.push(await openClient(url));
  await expect(openClient(url)).rejects.toMatchObject({ status: 503 });

  // A subscriber that stops reading while broadcasts pile up: cut off with 1013.
  for (const client of extra) client.ws.close();
  await Promise.all(extra.map((client) => client.closed));
  const reader = new WebSocket(url);
  await new Promise((resolve) => reader.once("open", resolve));
  reader.send(JSON.stringify({ type: "subscribe", channel: "firehose", id: 1 }));
  await new Promise((resolve) => reader.once("message", resolve));
  (reader as unknown as { _socket: { pause(): void } })._socket.pause();
  const closed = new Promise<number>((resolve) => reader.once("close", (code) => resolve(code)));
  const pad = "x".repeat(64 * 1024);
  for (let i = 0; i < 400 && app.subscriberCount("firehose") > 0; i++) {
    await app.channels.firehose({ pad });
    if (i % 20 === 19) await sleep(5);
  }
  expect(app.subscriberCount("firehose")).toBe(0);
  (reader as unknown as { _socket: { resume(): void } })._socket.resume();
  expect(await closed).toBe(1013);

  for (const client of [queued, flood]) client.ws.close();
  main.ws.close(1000, "bye");
  await main.closed;
  await sleep(50);
  const collected = await reader_collect();
  metrics = collected;
}, 30_000);

async function reader_collect(): Promise<ResourceMetrics> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  return resourceMetrics;
}

/** Scrapes a Prometheus endpoint; finds the line that starts with a prefix. */
async function scrape(port: number): Promise<(prefix: string) => string | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return (prefix) => text.split("\n").find((line) => line.startsWith(prefix));
}

afterAll(async () => {
  await server?.close();
  context.disable();
  propagation.disable();
});

describe("metrics", () => {
  it("count connections: open, opened, closed by code", () => {
    expect(value("socketapi.connections")).toBe(0);
    expect(unitOf("socketapi.connections")).toBe("{connection}");
    // main, queued, flood, three extra, the slow reader.
    expect(value("socketapi.connections.opened")).toBe(7);
    expect(
      value("socketapi.connections.closed", { "socketapi.close_code": 1000 }),
    ).toBeGreaterThanOrEqual(1);
    expect(value("socketapi.connections.closed", { "socketapi.close_code": 1013 })).toBe(1);
  });

  it("count subscriptions by channel template, not by concrete name", () => {
    const templates = points("socketapi.subscriptions").map(
      (p) => p.attributes["socketapi.channel"],
    );
    expect(templates.sort()).toEqual(["chat", "firehose", "rooms/{room}"]);
    // All ended with their connections.
    for (const template of templates) {
      expect(value("socketapi.subscriptions", { "socketapi.channel": template })).toBe(0);
    }
  });

  it("count frames in and out, broadcasts once per subscriber reached", () => {
    // main 11 (the one over 1 KiB included) and 3 for streams (2 calls, a cancel), queued 3,
    // flood 45, the slow reader 1.
    expect(value("socketapi.frames.received")).toBe(11 + 3 + 3 + 45 + 1);
    expect(value("socketapi.frames.sent") as number).toBeGreaterThan(
      value("socketapi.frames.received") as number,
    );
  });

  it("count error frames by code", () => {
    for (const code of [
      "INVALID_PARAMS",
      "INTERNAL_ERROR",
      "FORBIDDEN",
      "NOT_FOUND",
      "TOO_MANY_SUBSCRIPTIONS",
      "MESSAGE_TOO_LARGE",
    ]) {
      expect(value("socketapi.errors", { "error.type": code }), code).toBe(1);
    }
    expect(
      value("socketapi.errors", { "error.type": "RATE_LIMITED" }) as number,
    ).toBeGreaterThanOrEqual(2);
  });

  it("count refusals by the limit that refused", () => {
    expect(value("socketapi.refusals", { "socketapi.limit": "subscriptions" })).toBe(1);
    expect(value("socketapi.refusals", { "socketapi.limit": "size" })).toBe(1);
    expect(value("socketapi.refusals", { "socketapi.limit": "queue" })).toBe(1);
    expect(value("socketapi.refusals", { "socketapi.limit": "rate" }) as number).toBeGreaterThan(0);
    expect(value("socketapi.refusals", { "socketapi.limit": "origin" })).toBe(1);
    expect(value("socketapi.refusals", { "socketapi.limit": "connections" })).toBe(1);
    expect(value("socketapi.refusals", { "socketapi.limit": "slow_consumer" })).toBe(1);
  });

  it("count streams open, chunks sent and requests cancelled, by action", () => {
    expect(value("socketapi.streams", { "socketapi.action": "ticks" })).toBe(0);
    expect(value("socketapi.streams", { "socketapi.action": "endless" })).toBe(0);
    expect(value("socketapi.stream.chunks", { "socketapi.action": "ticks" })).toBe(3);
    expect(value("socketapi.stream.chunks", { "socketapi.action": "endless" })).toBeGreaterThan(0);
    expect(value("socketapi.requests.cancelled", { "socketapi.action": "endless" })).toBe(1);
    expect(value("socketapi.requests.cancelled", { "socketapi.action": "ticks" })).toBe(0);
    expect(value("socketapi.errors", { "error.type": "CANCELLED" })).toBe(1);
    expect(unitOf("socketapi.stream.chunks")).toBe("{chunk}");
  });

  it("time actions in seconds, by action and outcome", () => {
    const ok = value("socketapi.action.duration", {
      "socketapi.action": "add_numbers",
    }) as Histogram;
    expect(ok.count).toBeGreaterThanOrEqual(1 + 40);
    expect(unitOf("socketapi.action.duration")).toBe("s");
    const slow = value("socketapi.action.duration", { "socketapi.action": "slow" }) as Histogram;
    expect(slow.count).toBe(2);
    expect(slow.min).toBeGreaterThanOrEqual(0.09);
    const failed = value("socketapi.action.duration", {
      "socketapi.action": "broken",
      "error.type": "INTERNAL_ERROR",
    }) as Histogram;
    expect(failed.count).toBe(1);
  });

  it("measure broadcast fan-out by channel template", () => {
    const chat = value("socketapi.broadcast.fanout", { "socketapi.channel": "chat" }) as Histogram;
    expect(chat).toMatchObject({ count: 1, sum: 1 });
    const firehose = value("socketapi.broadcast.fanout", {
      "socketapi.channel": "firehose",
    }) as Histogram;
    expect(firehose.count).toBeGreaterThan(1);
  });
});

describe("attributes a client chooses", () => {
  it("make one series for every close code outside the registry's 1000-1015", async () => {
    const ownReader = new TestReader();
    const ownApp = new SocketAPI({
      telemetry: { meterProvider: new MeterProvider({ readers: [ownReader] }) },
      onError: () => {},
    }).action("noop", () => 1);
    const ownServer = await serve(ownApp, { port: 0 });
    try {
      // 300 clients, each closing with a code of its own; and two of the registry.
      const codes = [...Array.from({ length: 300 }, (_, i) => 3000 + i * 6), 1000, 1001];
      for (let i = 0; i < codes.length; i += 50) {
        const batch = await Promise.all(
          codes.slice(i, i + 50).map(async (code) => {
            const client = await openClient(ownServer.url);
            client.ws.close(code, "bye");
            return client.closed;
          }),
        );
        expect(batch).toHaveLength(Math.min(50, codes.length - i));
      }
      await sleep(100);
      const { resourceMetrics } = await ownReader.collect();
      const closed = resourceMetrics.scopeMetrics
        .flatMap((scope) => scope.metrics)
        .find((metric) => metric.descriptor.name === "socketapi.connections.closed");
      const series = Object.fromEntries(
        (closed?.dataPoints ?? []).map((p) => [
          String(p.attributes["socketapi.close_code"]),
          p.value,
        ]),
      );
      expect(series).toEqual({ other: 300, "1000": 1, "1001": 1 });
    } finally {
      await ownServer.close();
    }
  });
});

describe("spans", () => {
  const finished = () => spans.getFinishedSpans();
  const named = (name: string): ReadableSpan[] => finished().filter((span) => span.name === name);

  it("one per action, with its outcome, under the upgrade request's traceparent", () => {
    const [add, invalid] = named("action add_numbers");
    expect(add?.spanContext().traceId).toBe(TRACE_ID);
    expect(add?.parentSpanContext?.spanId).toBe(PARENT_SPAN);
    expect(add?.attributes).toMatchObject({
      "socketapi.action": "add_numbers",
      "network.protocol.name": "websocket",
    });
    expect(add?.status.code).toBe(0);
    expect(invalid?.status).toEqual({ code: 2, message: "INVALID_PARAMS" });
    expect(invalid?.attributes["error.type"]).toBe("INVALID_PARAMS");
    const [broken] = named("action broken");
    expect(broken?.status.code).toBe(2);
    expect(broken?.events.map((event) => event.name)).toEqual(["exception"]);
    expect(named("action forbidden")[0]?.attributes["error.type"]).toBe("FORBIDDEN");
  });

  it("one per subscribe, named by template, with the concrete name", () => {
    const [room] = named("subscribe rooms/{room}");
    expect(room?.attributes).toMatchObject({
      "socketapi.channel": "rooms/{room}",
      "socketapi.channel.name": "rooms/1",
    });
    expect(room?.spanContext().traceId).toBe(TRACE_ID);
    expect(named("subscribe chat")).toHaveLength(1);
  });

  it("a broadcast made inside an action is a child of its span", () => {
    const [action] = named("action send_message");
    const [broadcast] = named("broadcast chat");
    expect(broadcast?.parentSpanContext?.spanId).toBe(action?.spanContext().spanId);
    expect(broadcast?.attributes).toMatchObject({ "socketapi.delivered": 1 });
  });
});

describe("without an SDK", () => {
  it("records nothing and makes no span", async () => {
    const quiet = new SocketAPI().action("one", () => 1);
    const before = spans.getFinishedSpans().length;
    const local = await serve(quiet, { port: 0 });
    try {
      const client = await openClient(local.url);
      expect((await client.request({ type: "action", channel: "one", id: 1 })).data).toBe(1);
      client.ws.close();
    } finally {
      await local.close();
    }
    expect(spans.getFinishedSpans().length).toBe(before);
  });
});

describe("with a relay", () => {
  it("reports what it published, received and lost", async () => {
    const redis = await startRedis();
    const relayReader = new TestReader();
    const provider = new MeterProvider({ readers: [relayReader] });
    const make = (telemetry: boolean) =>
      new SocketAPI({
        relay: redisRelay(redis.url),
        ...(telemetry ? { telemetry: { meterProvider: provider } } : {}),
      }).channel("news", () => "x");
    const [a, b] = [make(true), make(false)];
    const [onA, onB] = [await serve(a, { port: 0 }), await serve(b, { port: 0 })];
    try {
      const subscriber = await openClient(onB.url);
      await subscriber.request({ type: "subscribe", channel: "news", id: 1 });
      expect(await a.channels.news()).toBe(0);
      expect(await subscriber.next()).toMatchObject({ type: "data", channel: "news" });
      subscriber.ws.close();
      const { resourceMetrics } = await relayReader.collect();
      metrics = resourceMetrics;
      expect(value("socketapi.relay.published")).toBe(1);
      expect(value("socketapi.relay.received")).toBe(0);
      expect(value("socketapi.relay.lost")).toBe(0);
      expect(value("socketapi.relay.disconnects")).toBe(0);
      expect(unitOf("socketapi.relay.published")).toBe("{message}");
      // 0 while ok; 2 once the broker is gone (1 while degraded).
      expect(points("socketapi.relay.health")).toHaveLength(1);
      expect(value("socketapi.relay.health")).toBe(0);
      await redis.kill();
      await vi.waitFor(async () => {
        metrics = (await relayReader.collect()).resourceMetrics;
        expect(value("socketapi.relay.health")).toBe(2);
      });
    } finally {
      await Promise.all([onA.close(), onB.close()]);
      await redis.kill();
    }
  });
});

describe("socketapi --metrics PORT", () => {
  it("serves the metrics as Prometheus text, scraped over HTTP", async () => {
    const { freePort } = await import("./helpers/server-process.ts");
    const metricsPort = await freePort();
    const cli = await startServer([
      "node",
      "adapters/node-cli.js",
      "examples/main.ts",
      "--port",
      "{port}",
      "--metrics",
      String(metricsPort),
    ]);
    try {
      expect(cli.output()).toContain(`metrics at http://127.0.0.1:${metricsPort}/metrics`);
      const client = await openClient(cli.url);
      expect(
        (
          await client.request({
            type: "action",
            channel: "add_numbers",
            data: { a: 5, b: 3 },
            id: 1,
          })
        ).data,
      ).toBe(8);
      expect(
        (await client.request({ type: "action", channel: "add_numbers", data: {}, id: 2 })).code,
      ).toBe("INVALID_PARAMS");
      const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(response.headers.get("content-type")).toContain("text/plain");
      const text = await response.text();
      const line = await scrape(metricsPort);
      expect(line("socketapi_connections{")).toMatch(/ 1$/);
      expect(line("socketapi_frames_received_total{")).toMatch(/ 2$/);
      expect(line('socketapi_errors_total{error_type="INVALID_PARAMS"')).toMatch(/ 1$/);
      expect(line('socketapi_action_duration_count{socketapi_action="add_numbers"')).toMatch(/ 1$/);
      expect(text).toContain("# HELP socketapi_action_duration How long actions take");
      client.ws.close();
    } finally {
      await cli.stop();
    }
  });
});

describe.each([
  ["Bun", [`${root}/node_modules/.bin/bun`, "tests/servers/metrics-bun.ts"]],
  [
    "Deno",
    [
      `${root}/node_modules/.bin/deno`,
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-sys",
      "tests/servers/metrics-deno.ts",
    ],
  ],
])("on %s", (_runtime, command) => {
  it("counts what it serves, scraped from the Prometheus exporter", async () => {
    const { freePort } = await import("./helpers/server-process.ts");
    const metricsPort = await freePort();
    const server = await startServer(command, {
      env: { METRICS_PORT: String(metricsPort) },
      timeout: 60_000,
    });
    try {
      const client = await openClient(server.url);
      expect(
        (
          await client.request({
            type: "action",
            channel: "add_numbers",
            data: { a: 5, b: 3 },
            id: 1,
          })
        ).data,
      ).toBe(8);
      expect((await client.request({ type: "subscribe", channel: "chat", id: 2 })).type).toBe(
        "subscribed",
      );
      expect((await client.request({ type: "action", channel: "nope", id: 3 })).code).toBe(
        "NOT_FOUND",
      );
      const line = await scrape(metricsPort);
      expect(line("socketapi_connections{")).toMatch(/ 1$/);
      expect(line("socketapi_frames_received_total{")).toMatch(/ 3$/);
      expect(line('socketapi_subscriptions{socketapi_channel="chat"')).toMatch(/ 1$/);
      expect(line('socketapi_errors_total{error_type="NOT_FOUND"')).toMatch(/ 1$/);
      expect(line('socketapi_action_duration_count{socketapi_action="add_numbers"')).toMatch(/ 1$/);
      client.ws.close();
    } finally {
      await server.stop();
    }
  }, 90_000);
});
