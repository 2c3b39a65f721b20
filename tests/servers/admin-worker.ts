// The conformance app on Workers with the dashboard (wrangler dev, admin-wrangler.toml): its
// token from the ADMIN_TOKEN variable (`wrangler dev --var`).
import { env } from "cloudflare:workers";
import { cloudflare } from "../../adapters/cloudflare.ts";
import app from "./conformance-app.ts";

const { worker, SocketAPIObject } = cloudflare(app, {
  admin: { token: (env as { ADMIN_TOKEN?: string }).ADMIN_TOKEN ?? "" },
});

export default worker;
export { SocketAPIObject };
