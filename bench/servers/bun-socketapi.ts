// SocketAPI on Bun: the app of socketapi-app.ts.
import { bun } from "../../adapters/bun.ts";
import { app } from "./socketapi-app.ts";

const handler = bun(app, { broadcast: false });
const server = Bun.serve({
  ...handler,
  port: Number(process.env.PORT),
  hostname: "127.0.0.1",
  fetch(request, server) {
    if (new URL(request.url).pathname === "/__memory") {
      Bun.gc(true);
      return Response.json(process.memoryUsage());
    }
    return handler.fetch(request, server);
  },
});
console.log(`listening at ws://127.0.0.1:${server.port}/`);
