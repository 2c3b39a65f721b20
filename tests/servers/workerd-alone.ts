// The Worker of tests/workerd-alone.test.ts, served by the workerd binary alone (no
// wrangler or miniflare proxy in front, which negotiate what a client gets on their own):
// it says what the app's error hook was told.
import * as v from "valibot";
import { cloudflare } from "../../adapters/cloudflare.ts";
import { SocketAPI } from "../../src/index.ts";

const told: string[] = [];

const app = new SocketAPI({
  maxMessageBytes: 64 * 1024,
  onError: (error) => told.push(error instanceof Error ? error.message : String(error)),
})
  .action("add_numbers", { input: v.object({ a: v.number(), b: v.number() }) }, ({ a, b }) => a + b)
  .action("told", () => told);

const { worker, SocketAPIObject } = cloudflare(app);

export default worker;
export { SocketAPIObject };
