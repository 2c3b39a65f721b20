// Whether a Worker negotiates permessage-deflate with its clients, told once per isolate.
//
// workerd compresses WebSockets for every Worker with a compatibility date of 2023-08-15 or
// later, unless it has the `no_web_socket_compression` flag; a 101 whose
// Sec-WebSocket-Extensions is empty does not refuse it (workerd treats an empty value as
// none, and then answers with the client's own offer). Measured with workerd 2026-04-26
// run alone, without wrangler's proxy: a 30 KB compressed frame reached a Durable Object as
// 30 MiB. The flags a Worker runs with are in `Cloudflare.compatibilityFlags`
// (https://developers.cloudflare.com/workers/configuration/compatibility-flags/).
import { type AnyApp, reportToApp } from "../../src/adapter.ts";

/** What the app's error hook is told when the flag is missing. */
export const COMPRESSION_WARNING =
  "socketapi/cloudflare: this Worker negotiates permessage-deflate with its clients (no " +
  "`no_web_socket_compression` compatibility flag): a 30 KB compressed frame can inflate to 30 MiB " +
  'inside a Durable Object, whatever maxMessageBytes says. Add compatibility_flags = ["no_web_socket_compression"] ' +
  "to wrangler.toml (docs/cloudflare.md).";

/** What the app's error hook is told when it asks for compression the Worker does not have. */
export const NO_COMPRESSION_WARNING =
  "socketapi/cloudflare: the app asks for `compression`, but this Worker has the " +
  "`no_web_socket_compression` compatibility flag: nothing is compressed. Remove the flag to " +
  "compress (inflated frames are then bounded by the runtime's 32 MiB, docs/transports.md).";

let told = false;

/** Whether this isolate runs with WebSocket compression on. */
export function compressesWebSockets(): boolean {
  const flags = (globalThis as { Cloudflare?: { compatibilityFlags?: Record<string, boolean> } })
    .Cloudflare?.compatibilityFlags;
  return flags?.web_socket_compression === true;
}

/**
 * Tells the app's error hook, once per isolate, when WebSockets are compressed and the app
 * did not ask for it (`compression`), or when it asked and they are not.
 */
export function warnOfCompression(app: AnyApp): void {
  if (told) return;
  told = true;
  const asked = app.limits.compression !== false;
  if (compressesWebSockets() === asked) return;
  const warning = asked ? NO_COMPRESSION_WARNING : COMPRESSION_WARNING;
  reportToApp(app, new Error(warning), { phase: "upgrade" });
}
