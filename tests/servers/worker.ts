// Serves the conformance app on Workers (wrangler dev, tests/servers/wrangler.toml).
import { cloudflare } from "../../adapters/cloudflare.ts";
import app from "./conformance-app.ts";

// Headers a handler reads must be kept: after hibernation only these are left.
const { worker, SocketAPIObject } = cloudflare(app, { keepHeaders: ["x-probe"] });

export default worker;
export { SocketAPIObject };
