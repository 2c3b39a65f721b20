// SocketAPI on Node: the app of socketapi-app.ts.
import { createServer } from "node:http";
import { attach } from "../../adapters/node.ts";
import { memoryReport } from "./node-memory.ts";
import { setUpTelemetry } from "./otel.ts";
import { app } from "./socketapi-app.ts";

await setUpTelemetry();
const server = createServer(memoryReport);
attach(app, server);
server.listen(Number(process.env.PORT), "127.0.0.1", () =>
  console.log(`listening at ws://127.0.0.1:${process.env.PORT}/`),
);
process.on("SIGINT", () => process.exit(0));
