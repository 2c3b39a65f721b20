import { join } from "node:path";
import { build } from "esbuild";
import { root } from "./server-process.ts";

/** `socketapi/client` bundled for a browser, as an app would ship it. */
export async function bundleClient(): Promise<string> {
  const result = await build({
    entryPoints: [join(root, "src", "client", "index.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: false,
    write: false,
  });
  return result.outputFiles[0]?.text ?? "";
}
