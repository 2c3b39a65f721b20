// The client bundle holds no server code: the app's type is imported as a type only.
import { gzipSync } from "node:zlib";
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

it("ships socketapi/react with the client and without the server; sizes minified and gzipped", async () => {
  const react = await bundleClient("react");
  for (const serverOnly of ["safeParse", "handleBroadcastRequest", "receiveText", "node:"]) {
    expect(react, serverOnly).not.toContain(serverOnly);
  }
  // React is the app's: imported, never bundled.
  expect(react).toMatch(/from "react"/);
  const size = async (entry: "client" | "react") =>
    gzipSync(await bundleClient(entry, { minify: true })).byteLength;
  const [client, hooks] = [await size("client"), await size("react")];
  // Measured: the client 7,478 bytes, the hooks with it 9,274 (1,796 of their own).
  expect(client).toBeLessThan(9 * 1024);
  expect(hooks - client).toBeLessThan(3 * 1024);
});
