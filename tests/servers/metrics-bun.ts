// The conformance app on Bun with OpenTelemetry's metrics SDK and a Prometheus exporter on
// METRICS_PORT, set up as docs/observability.md shows.
import { metrics } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { bun } from "../../adapters/bun.ts";
import app from "./conformance-app.ts";

const exporter = new PrometheusExporter({
  host: "127.0.0.1",
  port: Number(process.env.METRICS_PORT),
});
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [exporter] }));
const socketapi = bun(app);
const server = Bun.serve({ ...socketapi, port: Number(process.env.PORT), hostname: "127.0.0.1" });
console.log(`listening at ws://127.0.0.1:${server.port}/`);
