// The app's documentation over HTTP: its AsyncAPI document at `/asyncapi.json`, and at
// `/docs` a page that lists its actions and channels and calls them over a WebSocket to the
// same server. Off unless asked for (`docs: true`, or `socketapi main.ts --docs`).
import type { SocketAPI } from "../app.ts";
import type { AsyncApiOptions, AsyncApiServer } from "../describe/asyncapi.ts";
import { internalsOf } from "./app-internals.ts";

/** Where the documentation is served, and what the document says of the API. */
export interface DocsOptions {
  /** The page's path (default `/docs`). */
  path?: string | undefined;
  /** The document's path (default `/asyncapi.json`). */
  asyncapiPath?: string | undefined;
  /** The document's title, version and description (its server is the one that answers). */
  asyncapi?: Omit<AsyncApiOptions, "servers"> | undefined;
  /**
   * Where the page opens its WebSocket: a path on this server (default: where the app is
   * served), or a `ws://` / `wss://` URL. The page adds its own query to it (`/docs?token=…`
   * connects with `?token=…`), and what is typed in its query field.
   */
  socket?: string | undefined;
}

/** The documentation's options, or `undefined` when it is not served. */
export function docsOptions(docs: DocsOptions | boolean | undefined): DocsOptions | undefined {
  if (docs === undefined || docs === false) return undefined;
  return docs === true ? {} : docs;
}

export const DOCS_PATH = "/docs";
export const ASYNCAPI_PATH = "/asyncapi.json";

/** Which documentation `path` asks for, if any. */
export function docsRouteOf(
  path: string,
  docs: DocsOptions | undefined,
): "docs" | "asyncapi" | undefined {
  if (!docs) return undefined;
  if (path === (docs.path ?? DOCS_PATH)) return "docs";
  if (path === (docs.asyncapiPath ?? ASYNCAPI_PATH)) return "asyncapi";
  return undefined;
}

/**
 * Answers a request for the documentation: the page, or the document with the server that
 * answered it (its host, `ws` or `wss` as the request came, and `socketPath`, default `/`).
 */
export async function handleDocsRequest(
  // biome-ignore lint/suspicious/noExplicitAny: any app can be documented.
  app: SocketAPI<any, any, any>,
  route: "docs" | "asyncapi",
  request: { readonly url: string; readonly method: string },
  docs: DocsOptions,
  socketPath: string | undefined,
): Promise<Response> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("Method Not Allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  const url = new URL(request.url);
  const head = request.method === "HEAD";
  if (route === "asyncapi") {
    const text = await asyncapiText(app, docs, {
      host: url.host,
      protocol: url.protocol === "https:" ? "wss" : "ws",
      pathname: socketPath ?? "/",
    });
    return new Response(head ? null : text, {
      headers: {
        "content-type": "application/json; charset=utf-8",
        "cache-control": "no-store",
        "access-control-allow-origin": "*",
      },
    });
  }
  const { docsPage } = await import("../describe/docs-page.ts");
  const socket = docs.socket ?? socketPath ?? "/";
  const page = docsPage({
    title: docs.asyncapi?.title ?? "SocketAPI",
    asyncapi: docs.asyncapiPath ?? ASYNCAPI_PATH,
    socket,
  });
  // A socket on another origin is one the page may connect to, and only that one.
  const elsewhere = /^wss?:\/\//i.test(socket) ? ` ${new URL(socket).origin}` : "";
  return new Response(head ? null : page, {
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      // Everything the page needs is in it; it talks to this server only.
      "content-security-policy":
        `default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; ` +
        `connect-src 'self' ws://${url.host} wss://${url.host}${elsewhere}; img-src data:; base-uri 'none'; form-action 'none'`,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
    },
  });
}

/** The documents served lately, per app: written once per server, until a declaration is added. */
const served = new WeakMap<object, { declarations: number; texts: Map<string, string> }>();

/** How many servers' documents an app keeps (the host comes from the request: bounded). */
const MAX_SERVED_DOCUMENTS = 8;

/**
 * The document as text, with the server that answers: built from the declarations once, not
 * per request, while no declaration is added.
 */
async function asyncapiText(
  // biome-ignore lint/suspicious/noExplicitAny: any app can be documented.
  app: SocketAPI<any, any, any>,
  docs: DocsOptions,
  server: AsyncApiServer,
): Promise<string> {
  const declarations = internalsOf(app).declarations();
  let kept = served.get(app);
  if (!kept || kept.declarations !== declarations) {
    kept = { declarations, texts: new Map() };
    served.set(app, kept);
  }
  const key = JSON.stringify([docs.asyncapi ?? null, server]);
  const text = kept.texts.get(key);
  if (text !== undefined) return text;
  const document = await app.asyncapi({ ...docs.asyncapi, servers: { default: server } });
  const written = JSON.stringify(document, null, 2);
  for (const oldest of kept.texts.keys()) {
    if (kept.texts.size < MAX_SERVED_DOCUMENTS) break;
    kept.texts.delete(oldest);
  }
  kept.texts.set(key, written);
  return written;
}
