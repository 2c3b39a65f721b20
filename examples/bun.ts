/**
 * The seed example on Bun: `npm run start:bun` (PORT, default 8000).
 * `export default { ...bun(app), port: 8000 }` works too, for `bun run`.
 */
import { bun } from "socketapi/bun";
import app from "./main.ts";

const socketapi = bun(app);
const server = Bun.serve({
  ...socketapi,
  port: Number(process.env.PORT ?? 8000),
  hostname: "127.0.0.1",
});
console.log(`SocketAPI: serving examples/main.ts at ws://${server.hostname}:${server.port}/`);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    await socketapi.shutdown(server);
    process.exit(0);
  });
}
