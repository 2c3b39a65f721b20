// The Worker of tests/workerd-alone.test.ts, served by the workerd binary alone (no
// wrangler or miniflare proxy in front, which negotiate what a client gets on their own):
// it says what the app's error hook was told. The compression test's bundle turns the
// app's `compression` on.
import * as v from "valibot";
import { cloudflare } from "../../adapters/cloudflare.ts";
import { SocketAPI } from "../../src/index.ts";

const told: string[] = [];

/** Replaced with `true` by the bundle of the compression test (esbuild's `define`). */
declare const WORKER_COMPRESSION: boolean | undefined;

const app = new SocketAPI({
  maxMessageBytes: 64 * 1024,
  compression: typeof WORKER_COMPRESSION !== "undefined" && WORKER_COMPRESSION,
  onError: (error) => told.push(error instanceof Error ? error.message : String(error)),
})
  .action("add_numbers", { input: v.object({ a: v.number(), b: v.number() }) }, ({ a, b }) => a + b)
  .action("told", () => told)
  // As many characters of a text that deflates well as asked.
  .action("text", { input: v.number() }, (count) =>
    "hello ".repeat(Math.ceil(count / 6)).slice(0, count),
  );

const { worker, SocketAPIObject } = cloudflare(app);

export default worker;
export { SocketAPIObject };
