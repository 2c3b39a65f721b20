import { join } from "node:path";
import { build } from "esbuild";
import { root } from "./server-process.ts";

/**
 * An entry bundled for a browser, as an app would ship it: `socketapi/client` by default,
 * `socketapi/react` with React left to the app (`react` external).
 */
export async function bundleClient(
  entry: "client" | "react" = "client",
  { minify = false }: { minify?: boolean } = {},
): Promise<string> {
  const result = await build({
    entryPoints: [join(root, "src", entry === "client" ? "client/index.ts" : "react/index.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify,
    write: false,
    external: ["react", "react-dom"],
  });
  return result.outputFiles[0]?.text ?? "";
}
