/**
 * The seed example on Cloudflare Workers: `npm run start:workers` (wrangler dev on PORT,
 * default 8000), `npx wrangler deploy` to publish. Connections live in the SocketAPIObject
 * Durable Object (bound as SOCKETAPI in wrangler.toml), with the Hibernation API.
 */
import { cloudflare } from "socketapi/cloudflare";
import app from "./main.ts";

const { worker, SocketAPIObject } = cloudflare(app);

export default worker;
export { SocketAPIObject };
