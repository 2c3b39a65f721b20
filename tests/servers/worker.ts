// Serves the conformance app on Workers (wrangler dev, tests/servers/wrangler.toml).
import { env } from "cloudflare:workers";
import { cloudflare } from "../../adapters/cloudflare.ts";
import app from "./conformance-app.ts";

// Headers a handler reads must be kept: after hibernation only these are left.
// SOCKETAPI_PATH (`wrangler dev --var`): serve only that path (the suite's path checks);
// ADMIN_TOKEN: the dashboard, with that token (tests/admin.test.ts).
const vars = env as { SOCKETAPI_PATH?: string; ADMIN_TOKEN?: string };
const { worker, SocketAPIObject } = cloudflare(app, {
  keepHeaders: ["x-probe"],
  docs: true,
  path: vars.SOCKETAPI_PATH,
  ...(vars.ADMIN_TOKEN ? { admin: { token: vars.ADMIN_TOKEN } } : {}),
});

export default worker;
export { SocketAPIObject };
