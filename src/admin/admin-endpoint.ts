// The dashboard over HTTP: `GET /admin` with the token gives the page (the token in the
// query is moved into a cookie for the page's path, and the query dropped), without it a
// sign-in form with 401; an upgrade on the same path is the page's socket, served by the
// dashboard's own app (admin-app.ts), whose admission checks the same token.
import type { AnyApp } from "../app.ts";
import { adminOf } from "./admin-app.ts";
import { ADMIN_PATH, type AdminOptions } from "./admin-options.ts";
import { offeredToken, tokenCookie } from "./admin-token.ts";
import { dashboardPage, dashboardScriptSource, signInPage } from "./dashboard-page.ts";

/** The headers every answer of the dashboard has: nothing cached, framed or sniffed. */
const GUARDED = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
} as const;

/** Answers a plain (not upgrade) request to the dashboard's path. */
export async function handleAdminRequest(
  app: AnyApp,
  request: { readonly url: string; readonly method: string; readonly headers: Headers },
  options: AdminOptions,
  title = "SocketAPI",
): Promise<Response> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("Method Not Allowed\n", {
      status: 405,
      headers: { ...GUARDED, allow: "GET, HEAD" },
    });
  }
  const admin = adminOf(app, options);
  const url = new URL(request.url);
  const path = options.path ?? ADMIN_PATH;
  const head = request.method === "HEAD";
  const token = offeredToken(url, request.headers);
  const valid = await admin.tokens.matches(token);
  const inQuery = url.searchParams.has("token");
  if (!valid) {
    return new Response(head ? null : signInPage(title, path, token !== undefined), {
      status: 401,
      headers: {
        ...GUARDED,
        "content-type": "text/html; charset=utf-8",
        "content-security-policy":
          "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
      },
    });
  }
  if (inQuery) {
    // Off the address bar and out of the history: the cookie carries it from now on.
    return new Response(null, {
      status: 303,
      headers: {
        ...GUARDED,
        location: path,
        "set-cookie": tokenCookie(token ?? "", path, url.protocol === "https:"),
      },
    });
  }
  const page = dashboardPage({ title, socket: path });
  return new Response(head ? null : page, {
    headers: {
      ...GUARDED,
      "content-type": "text/html; charset=utf-8",
      // The page's one script, by its hash; its socket, on this server only.
      "content-security-policy":
        `default-src 'none'; script-src ${await dashboardScriptSource()}; style-src 'unsafe-inline'; ` +
        `connect-src ws://${url.host} wss://${url.host}; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    },
  });
}
