// The dashboard's own SocketAPI app: what the page's socket is served by, on the
// dashboard's path. A channel `stats` (a view every second while subscribed) and three
// actions: `connections` (this instance's, to pick one), `disconnect` (a connection or a
// user, on every instance) and `broadcast` (a test message to a channel). Its connections,
// frames and errors are its own: the app it watches does not count them.
import * as v from "valibot";
import { type AnyApp, SocketAPI } from "../app.ts";
import { SocketAPIError } from "../errors.ts";
import { hubOf, internalsOf } from "../serve/app-internals.ts";
import type { AdminActionEvent, AdminOptions } from "./admin-options.ts";
import { offeredToken, TokenCheck } from "./admin-token.ts";
import { AdminWatch, type SampleCollector } from "./admin-watch.ts";

/** How many dashboard pages may be open on one instance at once. */
export const MAX_ADMIN_CONNECTIONS = 16;

/** How many connections `connections` lists at most. */
export const MAX_LISTED_CONNECTIONS = 100;

/** The close an operator's disconnect sends: 1008 (policy), said to be from an operator. */
export const OPERATOR_CLOSE = { code: 1008, reason: "Disconnected by an operator" } as const;

/** The dashboard of one app on this instance. */
export interface Admin {
  readonly options: AdminOptions;
  /** The app the page's socket is served by. */
  readonly app: AnyApp;
  readonly tokens: TokenCheck;
  readonly watch: AdminWatch;
}

const admins = new WeakMap<object, Admin>();

/**
 * The dashboard of `app` (made with the first request to it, once per app); `collect` gives
 * it the other instances' samples where no relay carries them (a Worker's objects).
 */
export function adminOf(app: AnyApp, options: AdminOptions, collect?: SampleCollector): Admin {
  const known = admins.get(app);
  if (known) return known;
  const made = makeAdmin(app, options, collect);
  admins.set(app, made);
  return made;
}

/** The dashboard of `app` if one was made (for an adapter's shutdown). */
export function adminIfMade(app: AnyApp): Admin | undefined {
  return admins.get(app);
}

function makeAdmin(watched: AnyApp, options: AdminOptions, collect?: SampleCollector): Admin {
  const internals = internalsOf(watched);
  const hub = hubOf(watched);
  const tokens = new TokenCheck(options.token);
  let adminApp: AnyApp | undefined;
  const watch = new AdminWatch(
    {
      hub,
      telemetry: internals.telemetry,
      templateOf: (channel) => internals.findChannel(channel)?.template.name,
    },
    () => adminApp?.subscriberCount("stats") ?? 0,
    (view) => void adminApp?.publish("stats", view),
    collect,
  );
  const tell = (event: AdminActionEvent): void => {
    try {
      if (options.onAction) options.onAction(event);
      else
        console.info(
          `[socketapi] admin: ${event.action} ${JSON.stringify(event.target)} → ${event.result} (by ${event.by})`,
        );
    } catch (error) {
      console.error("[socketapi] admin onAction threw", error);
    }
  };
  const userOf = (connection: { readonly id: string }): string | undefined =>
    hub.userOf?.(connection as Parameters<NonNullable<typeof hub.userOf>>[0]);
  adminApp = new SocketAPI({
    telemetry: false,
    maxConnections: MAX_ADMIN_CONNECTIONS,
    // Every origin passes here: onConnect refuses one that is not this server's own (the
    // page's), which is known only from the request's Host.
    allowedOrigins: () => true,
    onConnect: async (request, credential) => {
      const url = new URL(request.url);
      // Only the page of this server may open it from a browser (cross-site hijacking).
      const origin = request.headers.get("origin");
      if (origin !== null && !sameHost(origin, request.headers.get("host") ?? url.host)) {
        return new Response("Forbidden\n", { status: 403 });
      }
      const token = offeredToken(url, request.headers) ?? credential.token;
      if (!(await tokens.matches(token))) return new Response("Unauthorized\n", { status: 401 });
      return {};
    },
  })
    .channel("stats", { initialData: true }, (_params, ctx) => {
      if (ctx.event === "subscribe") watch.begin();
      return watch.view ?? null;
    })
    .action(
      "connections",
      { input: v.object({ user: v.optional(v.pipe(v.string(), v.maxLength(256))) }) },
      ({ user }) => {
        const listed: { id: string; user: string | null; subscriptions: number }[] = [];
        let total = 0;
        for (const connection of watched.connections) {
          const owner = userOf(connection) ?? null;
          if (user !== undefined && user !== "" && owner !== user) continue;
          total++;
          if (listed.length < MAX_LISTED_CONNECTIONS) {
            listed.push({
              id: connection.id,
              user: owner,
              subscriptions: connection.subscriptions.size,
            });
          }
        }
        return { instance: watch.id, total, connections: listed };
      },
    )
    .action(
      "disconnect",
      {
        input: v.union([
          v.object({ connection: v.pipe(v.string(), v.minLength(1), v.maxLength(256)) }),
          v.object({ user: v.pipe(v.string(), v.minLength(1), v.maxLength(256)) }),
        ]),
      },
      async (input, ctx) => {
        const closed =
          "connection" in input
            ? await watched.disconnectConnection(input.connection, OPERATOR_CLOSE)
            : await watched.disconnectUser(input.user, OPERATOR_CLOSE);
        tell({
          action: "connection" in input ? "disconnect-connection" : "disconnect-user",
          target: "connection" in input ? input.connection : input.user,
          result: closed,
          by: ctx.connection.id,
          at: Date.now(),
        });
        return { closed };
      },
    )
    .action(
      "broadcast",
      {
        input: v.object({
          channel: v.pipe(v.string(), v.minLength(1), v.maxLength(1024)),
          data: v.unknown(),
        }),
      },
      async ({ channel, data }, ctx) => {
        if (!internals.findChannel(channel)) {
          throw new SocketAPIError(`No channel is declared that matches '${channel}'.`, {
            code: "NOT_FOUND",
          });
        }
        const reached = await watched.publish(channel, data ?? null);
        tell({
          action: "broadcast",
          target: channel,
          result: reached,
          by: ctx.connection.id,
          at: Date.now(),
        });
        // Subscribers reached here; the relay, if any, carries it to the other instances.
        return { reached, relayed: hub.relay !== undefined };
      },
    );
  void watch.listen();
  return { options, app: adminApp, tokens, watch };
}

/** Whether an `Origin` names `host` (its host and port). */
function sameHost(origin: string, host: string): boolean {
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}
