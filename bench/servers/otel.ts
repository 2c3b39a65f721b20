// OpenTelemetry for the bench's SocketAPI servers, as an operator would turn it on:
// BENCH_OTEL=metrics registers the metrics SDK with a Prometheus exporter serving on a port
// of its own; BENCH_OTEL=traces registers the tracing SDK (every span sampled, batched to an
// exporter that drops them). Without BENCH_OTEL, nothing: the API alone, a no-op.
import { metrics, trace } from "@opentelemetry/api";
import { ExportResultCode } from "@opentelemetry/core";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base";

export async function setUpTelemetry(): Promise<void> {
  const mode = process.env.BENCH_OTEL;
  if (mode === "metrics") {
    const exporter = new PrometheusExporter({
      host: "127.0.0.1",
      port: 0,
      preventServerStart: true,
    });
    await exporter.startServer();
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [exporter] }));
  } else if (mode === "traces") {
    const dropped: SpanExporter = {
      export: (_spans: ReadableSpan[], done) => done({ code: ExportResultCode.SUCCESS }),
      shutdown: async () => {},
    };
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropped)] }),
    );
  }
}
