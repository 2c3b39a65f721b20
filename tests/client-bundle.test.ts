// The client bundle holds no server code: the app's type is imported as a type only.
import { expect, it } from "vitest";
import { bundleClient } from "./helpers/client-bundle.ts";

it("bundles socketapi/client without the server, valibot or any runtime's API", async () => {
  const bundle = await bundleClient();
  for (const serverOnly of [
    "safeParse", // valibot
    "MemoryHub",
    "handleBroadcastRequest",
    "Message type is required.",
    "receiveText",
    "node:",
    "Bun.",
    "Deno.",
    "cloudflare:",
  ]) {
    expect(bundle, serverOnly).not.toContain(serverOnly);
  }
  expect(bundle).toContain("SocketAPIClient = class");
  // Small enough to ship to a browser: about 51 KB unminified with the codec option, the
  // bytes mapping and the SSE fallback (38 KB before them), no dependencies.
  expect(new TextEncoder().encode(bundle).byteLength).toBeLessThan(55_000);
});
