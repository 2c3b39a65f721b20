// What a running app tells OpenTelemetry: metrics (connections, subscriptions, frames,
// errors, refusals, action durations, broadcast fan-out, relay counters) and spans (one per
// action, per subscribe and per broadcast), through @opentelemetry/api only. Without an SDK
// the API is a no-op, and so is this: each hook checks one flag and returns.
import {
  type Attributes,
  type Context,
  type Counter,
  context,
  createNoopMeter,
  type Histogram,
  type Meter,
  type MeterProvider,
  metrics,
  type ObservableCounter,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type Tracer,
  type TracerProvider,
  trace,
  type UpDownCounter,
} from "@opentelemetry/api";
import type { Tally } from "../admin/tally.ts";
import type { RelayHealth, RelayStats } from "../hub/relay.ts";
import { errorCodeOf } from "../protocol/encode.ts";
import { CloseCode } from "../protocol/protocol.ts";

/** Where the app's telemetry goes: the providers to use, else the global ones. */
export interface TelemetryOptions {
  /** Default: the global one (`metrics.setGlobalMeterProvider`, or an SDK that sets it). */
  meterProvider?: MeterProvider | undefined;
  /** Default: the global one (`trace.setGlobalTracerProvider`, or an SDK that sets it). */
  tracerProvider?: TracerProvider | undefined;
}

/** The limits whose refusals are counted, as `socketapi.limit`. */
export type RefusedBy =
  | "rate"
  | "queue"
  | "size"
  | "subscriptions"
  | "connections"
  | "connect_rate"
  | "origin"
  | "slow_consumer";

/** The instrumentation scope's name: what the metrics and spans are reported under. */
export const SCOPE = "socketapi";

/** Histogram buckets for action durations, in seconds: 0.5 ms to 10 s. */
const DURATION_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Histogram buckets for fan-out, in subscribers. */
const FANOUT_BUCKETS = [0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/** Reads a `traceparent` (and `tracestate`) from the upgrade request's headers. */
const headerGetter: TextMapGetter<Headers> = {
  keys: (headers) => [...headers.keys()],
  get: (headers, key) => headers.get(key) ?? undefined,
};

interface Instruments {
  connections: UpDownCounter;
  opened: Counter;
  closed: Counter;
  subscriptions: UpDownCounter;
  received: Counter;
  sent: Counter;
  errors: Counter;
  refusals: Counter;
  duration: Histogram;
  fanout: Histogram;
  streams: UpDownCounter;
  chunks: Counter;
  cancelled: Counter;
}

/**
 * One action or subscribe being served: when it started, and its span (with tracing on).
 * Ended once, by the answer that settles it.
 */
export class FrameTrace {
  readonly span: Span | undefined;
  readonly context: Context | undefined;
  readonly #started: number;
  readonly #attributes: Attributes;
  readonly #telemetry: Telemetry;
  /** The action's name, for the dashboard's tally (`undefined` for a subscribe). */
  readonly #action: string | undefined;
  #ended = false;

  constructor(
    telemetry: Telemetry,
    attributes: Attributes,
    span: Span | undefined,
    parent: Context,
    action?: string,
  ) {
    this.#telemetry = telemetry;
    this.#action = action;
    this.#attributes = attributes;
    this.#started = performance.now();
    this.span = span;
    this.context = span ? trace.setSpan(parent, span) : undefined;
  }

  /** The frame was answered: with `errorCode` when it failed. */
  end(errorCode?: string, error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    const seconds = (performance.now() - this.#started) / 1000;
    const attributes =
      errorCode === undefined ? this.#attributes : { ...this.#attributes, "error.type": errorCode };
    if (this.#action !== undefined) {
      this.#telemetry.actionDuration(seconds, attributes, this.#action, errorCode);
    }
    const span = this.span;
    if (!span) return;
    if (errorCode !== undefined) {
      span.setAttribute("error.type", errorCode);
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode });
      if (error instanceof Error && errorCode === "INTERNAL_ERROR") span.recordException(error);
    }
    span.end();
  }
}

/**
 * An app's telemetry. Its instruments are made on first use (OpenTelemetry's metrics API
 * has no stand-in that turns real when an SDK comes later: set the SDK up before the first
 * connection), and only when a provider that records is there.
 */
export class Telemetry {
  readonly #options: TelemetryOptions | false;
  #instruments: Instruments | undefined | null;
  #tracer: Tracer | undefined | null;
  #relays: (() => RelayStats | undefined) | undefined;
  #relayHealth: (() => RelayHealth | undefined) | undefined;
  #subscriptionCounter: ((name: string, change: 1 | -1) => void) | undefined;
  /** The dashboard's counters while someone watches it (`admin`), else `undefined`. */
  #tally: Tally | undefined;

  constructor(options: TelemetryOptions | false = {}) {
    this.#options = options;
  }

  /** The relay whose counters and health are reported (read when metrics are collected). */
  watchRelay(
    stats: () => RelayStats | undefined,
    health: () => RelayHealth | undefined = () => undefined,
  ): void {
    this.#relays = stats;
    this.#relayHealth = health;
  }

  /**
   * Counts into `tally` from now on (the dashboard, while someone watches it), or stops
   * with `undefined`: nobody watching costs each hook one more field read.
   */
  watch(tally: Tally | undefined): void {
    this.#tally = tally;
  }

  /** The instruments, or `null` when nothing records metrics. */
  get #metrics(): Instruments | null {
    if (this.#instruments === undefined) this.#instruments = this.#makeInstruments();
    return this.#instruments;
  }

  #recording: boolean | undefined;

  /**
   * Whether anything records spans or metrics: else a caller may skip preparing them, and
   * connections ask before they call {@link startFrame} or {@link subscriptionCounter}. Measured on Bun (2,000 connections,
   * nothing recording): calling them anyway, for them to return at once, left more RSS per
   * connection than this check, the heap the same: after the first action 1.0-1.9 KB
   * against 0.5-1.0 KB, after the first subscribe 2.5-2.8 KB against 1.7-1.9 KB.
   */
  get recording(): boolean {
    if (this.#tally !== undefined) return true;
    this.#recording ??= this.tracer !== null || this.#metrics !== null;
    return this.#recording;
  }

  /** The tracer, or `null` when nothing records spans. */
  get tracer(): Tracer | null {
    if (this.#tracer === undefined) {
      if (this.#options === false) this.#tracer = null;
      else {
        const provider = this.#options.tracerProvider ?? trace.getTracerProvider();
        const tracer = provider.getTracer(SCOPE);
        // A tracer with no SDK behind it makes spans without a trace id.
        const probe = tracer.startSpan("socketapi.probe");
        const records = trace.isSpanContextValid(probe.spanContext());
        this.#tracer = records ? tracer : null;
      }
    }
    return this.#tracer;
  }

  connectionOpened(): void {
    if (this.#tally !== undefined) this.#tally.opened++;
    const m = this.#metrics;
    if (!m) return;
    m.connections.add(1);
    m.opened.add(1);
  }

  connectionClosed(code: number): void {
    if (this.#tally !== undefined) this.#tally.closed++;
    const m = this.#metrics;
    if (!m) return;
    m.connections.add(-1);
    m.closed.add(1, { "socketapi.close_code": closeCodeLabel(code) });
  }

  subscribed(template: string, count: 1 | -1): void {
    this.#metrics?.subscriptions.add(count, { "socketapi.channel": template });
  }

  /**
   * What a connection's subscriptions tell of their changes, counted by channel template;
   * `undefined` when nothing records metrics.
   */
  subscriptionCounter(channels: {
    findChannel(name: string): { readonly template: { readonly name: string } } | undefined;
  }): ((name: string, change: 1 | -1) => void) | undefined {
    const m = this.#metrics;
    if (!m) return undefined;
    // One function for every connection of the app: its channels are the same for all.
    this.#subscriptionCounter ??= (name, change) => {
      // A name no declaration matches (a restored subscription after a deploy removed its
      // channel) is one series, never the concrete name.
      const template = channels.findChannel(name)?.template.name ?? UNKNOWN_CHANNEL;
      m.subscriptions.add(change, { "socketapi.channel": template });
    };
    return this.#subscriptionCounter;
  }

  frameReceived(): void {
    if (this.#tally !== undefined) this.#tally.received++;
    this.#metrics?.received.add(1);
  }

  /** A frame written to a client; error frames are counted by code too. */
  frameSent(text: string): void {
    const m = this.#metrics;
    const tally = this.#tally;
    if (!m && tally === undefined) return;
    const code = errorCodeOf(text);
    if (tally !== undefined) tally.sentFrame(code);
    if (!m) return;
    m.sent.add(1);
    if (code !== undefined) m.errors.add(1, { "error.type": code });
  }

  /** Broadcast frames written to `count` subscribers of `channel` here. */
  delivered(count: number): void {
    if (count <= 0) return;
    if (this.#tally !== undefined) this.#tally.sent += count;
    this.#metrics?.sent.add(count);
  }

  refused(limit: RefusedBy): void {
    this.#tally?.refused(limit);
    this.#metrics?.refusals.add(1, { "socketapi.limit": limit });
  }

  /** A streaming action's answer opened (`1`) or ended (`-1`). */
  stream(action: string, change: 1 | -1): void {
    this.#metrics?.streams.add(change, { "socketapi.action": action });
  }

  /** A chunk of a streaming action's answer was written. */
  chunkSent(action: string): void {
    if (this.#tally !== undefined) this.#tally.chunks++;
    this.#metrics?.chunks.add(1, { "socketapi.action": action });
  }

  /** A request was cancelled by its client. */
  cancelled(action: string): void {
    if (this.#tally !== undefined) this.#tally.cancelled++;
    this.#metrics?.cancelled.add(1, { "socketapi.action": action });
  }

  /** An action (a declared one: its name is bounded by the declarations) was answered. */
  actionDuration(
    seconds: number,
    attributes: Attributes,
    action: string,
    errorCode: string | undefined,
  ): void {
    this.#tally?.action(action, seconds, errorCode);
    this.#metrics?.duration.record(seconds, attributes);
  }

  /**
   * Starts serving an action or a subscribe: its span (a child of the upgrade request's
   * `traceparent`, when it had one) and its clock. `undefined` when nothing records.
   */
  startFrame(
    kind: "action" | "subscribe",
    name: string,
    template: string,
    connection: { readonly id: string; readonly request: { readonly headers: Headers } },
  ): FrameTrace | undefined {
    const tracer = this.tracer;
    const timed = kind === "action" && (this.#metrics !== null || this.#tally !== undefined);
    if (!tracer && !timed) return undefined;
    const action = kind === "action" ? name : undefined;
    const attributes: Attributes =
      kind === "action" ? { "socketapi.action": name } : { "socketapi.channel": template };
    if (!tracer) return new FrameTrace(this, attributes, undefined, ROOT_CONTEXT, action);
    const parent = propagation.extract(ROOT_CONTEXT, connection.request.headers, headerGetter);
    const span = tracer.startSpan(
      `${kind} ${template}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          ...attributes,
          ...(kind === "subscribe" ? { "socketapi.channel.name": name } : {}),
          "socketapi.connection.id": connection.id,
          "network.protocol.name": "websocket",
        },
      },
      parent,
    );
    return new FrameTrace(this, attributes, span, parent, action);
  }

  /** Runs `work` with the frame's span as the active one: what it starts is its child. */
  within<T>(frame: FrameTrace | undefined, work: () => T): T {
    const active = frame?.context;
    return active ? context.with(active, work) : work();
  }

  /**
   * A broadcast: its fan-out here, and its span (a child of the active span: the action
   * that broadcast). Returns the function that ends it with the count.
   */
  broadcast(template: string, name: string): ((delivered: number) => void) | undefined {
    const m = this.#metrics;
    const tracer = this.tracer;
    if (!m && !tracer) return undefined;
    const span = tracer?.startSpan(
      `broadcast ${template}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: { "socketapi.channel": template, "socketapi.channel.name": name },
      },
      context.active(),
    );
    return (delivered) => {
      m?.fanout.record(delivered, { "socketapi.channel": template });
      if (span) {
        span.setAttribute("socketapi.delivered", delivered);
        span.end();
      }
    };
  }

  #makeInstruments(): Instruments | null {
    if (this.#options === false) return null;
    const provider = this.#options.meterProvider ?? metrics.getMeterProvider();
    const meter: Meter = provider.getMeter(SCOPE);
    // With no SDK, the API's meter makes instruments that record nothing: skip the work.
    if (isNoopMeter(meter)) return null;
    const made: Record<string, unknown> = {};
    for (const [key, kind, name, unit, description, buckets] of INSTRUMENTS) {
      const options = {
        description,
        unit,
        ...(buckets ? { advice: { explicitBucketBoundaries: buckets } } : {}),
      };
      made[key] =
        kind === "counter"
          ? meter.createCounter(name, options)
          : kind === "updown"
            ? meter.createUpDownCounter(name, options)
            : meter.createHistogram(name, options);
    }
    const relay = RELAY_COUNTERS.map(([stat, unit, description]) =>
      meter.createObservableCounter(`socketapi.relay.${stat}`, { description, unit }),
    );
    const health = meter.createObservableGauge("socketapi.relay.health", {
      description: "The relay's health: 0 ok, 1 degraded, 2 down (relay.health).",
      unit: "{state}",
    });
    meter.addBatchObservableCallback(
      (result) => {
        const now = this.#relayHealth?.();
        if (now) result.observe(health, HEALTH_VALUES[now.status]);
        const stats = this.#relays?.();
        if (!stats) return;
        RELAY_COUNTERS.forEach(([stat], i) => {
          result.observe(relay[i] as ObservableCounter, stats[stat]);
        });
      },
      [...relay, health],
    );
    return made as unknown as Instruments;
  }
}

/** Every synchronous instrument: its key, kind, name, unit, description, buckets. */
const INSTRUMENTS: [
  keyof Instruments,
  "counter" | "updown" | "histogram",
  string,
  string,
  string,
  number[]?,
][] = [
  ["connections", "updown", "socketapi.connections", "{connection}", "Open WebSocket connections."],
  ["opened", "counter", "socketapi.connections.opened", "{connection}", "Connections opened."],
  [
    "closed",
    "counter",
    "socketapi.connections.closed",
    "{connection}",
    "Connections closed, by close code.",
  ],
  [
    "subscriptions",
    "updown",
    "socketapi.subscriptions",
    "{subscription}",
    "Active subscriptions, by channel template.",
  ],
  ["received", "counter", "socketapi.frames.received", "{frame}", "Frames received from clients."],
  [
    "sent",
    "counter",
    "socketapi.frames.sent",
    "{frame}",
    "Frames sent to clients: answers, errors, broadcasts.",
  ],
  ["errors", "counter", "socketapi.errors", "{error}", "Error frames sent, by code."],
  [
    "refusals",
    "counter",
    "socketapi.refusals",
    "{refusal}",
    "Frames, subscriptions and connections refused by a limit, and slow consumers cut off.",
  ],
  [
    "duration",
    "histogram",
    "socketapi.action.duration",
    "s",
    "How long actions take, from their frame's turn to their answer.",
    DURATION_BUCKETS,
  ],
  [
    "fanout",
    "histogram",
    "socketapi.broadcast.fanout",
    "{subscriber}",
    "Subscribers a broadcast reached on this instance.",
    FANOUT_BUCKETS,
  ],
  ["streams", "updown", "socketapi.streams", "{stream}", "Open streaming answers, by action."],
  [
    "chunks",
    "counter",
    "socketapi.stream.chunks",
    "{chunk}",
    "Chunks of streaming answers sent, by action.",
  ],
  [
    "cancelled",
    "counter",
    "socketapi.requests.cancelled",
    "{request}",
    "Requests their client cancelled, by action.",
  ],
];

/** What `socketapi.relay.health` reports for each status. */
const HEALTH_VALUES: Record<RelayHealth["status"], number> = { ok: 0, degraded: 1, down: 2 };

/** The relay's counters, read when metrics are collected: stat, unit, description. */
const RELAY_COUNTERS: [Exclude<keyof RelayStats, "pendingBytes">, string, string][] = [
  ["published", "{message}", "Broadcasts handed to the relay for the other instances."],
  ["received", "{message}", "Broadcasts received from other instances."],
  ["lost", "{message}", "Broadcasts that did not reach the other instances."],
  ["disconnects", "{disconnect}", "Times the connection to the broker was lost."],
];

/** Whether `meter` is the API's no-op (no SDK registered, no provider given). */
function isNoopMeter(meter: Meter): boolean {
  return meter.constructor === NOOP_METER_CLASS;
}

const NOOP_METER_CLASS = createNoopMeter().constructor;

/** The series of subscriptions to a name that no declaration matches any more. */
const UNKNOWN_CHANNEL = "(unknown)";

/**
 * A close code as a metric attribute: the codes RFC 6455 and IANA's registry define
 * (1000-1015) and SocketAPI's own (4001, an expired credential) as they are, every other
 * one (a client may send any of 3000-4999, about 2,000) as `"other"`, so that clients
 * cannot make a series per code.
 */
function closeCodeLabel(code: number): number | "other" {
  if (code === CloseCode.tokenExpired) return code;
  return Number.isInteger(code) && code >= 1000 && code <= 1015 ? code : "other";
}
