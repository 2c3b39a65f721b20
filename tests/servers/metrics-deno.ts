// The conformance app on Deno with OpenTelemetry's metrics SDK and a Prometheus exporter on
// METRICS_PORT, set up as docs/observability.md shows.
import { metrics } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { deno } from "../../adapters/deno.ts";
import app from "./conformance-app.ts";

const exporter = new PrometheusExporter({
  host: "127.0.0.1",
  port: Number(Deno.env.get("METRICS_PORT")),
});
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [exporter] }));
const socketapi = deno(app);
Deno.serve(
  {
    port: Number(Deno.env.get("PORT")),
    hostname: "127.0.0.1",
    onListen: ({ port }) => console.log(`listening at ws://127.0.0.1:${port}/`),
  },
  socketapi.fetch,
);
