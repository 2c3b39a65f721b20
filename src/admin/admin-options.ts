// The dashboard's options, and which requests are its own. Small and loaded with the
// request table: the dashboard itself (its app, its page) is loaded when first asked for.

/** An operator's action from the dashboard, as told to `onAction` (and logged). */
export interface AdminActionEvent {
  /** What was done. */
  readonly action: "disconnect-connection" | "disconnect-user" | "broadcast";
  /** The connection id, the user id, or the channel's concrete name. */
  readonly target: string;
  /** Connections closed, or subscribers reached here. */
  readonly result: number;
  /** The dashboard connection it came from (its id on the admin socket). */
  readonly by: string;
  /** When (ms since the epoch). */
  readonly at: number;
}

/**
 * The live dashboard (`/admin`, docs/dashboard.md): off unless given. The token is what an
 * operator opens `/admin?token=…` with; keep it secret, at least 16 characters.
 *
 * @example
 * ```ts
 * import { SocketAPI } from "socketapi";
 * import { serve } from "socketapi/node";
 *
 * const app = new SocketAPI();
 * await serve(app, { port: 8000, admin: { token: process.env.ADMIN_TOKEN ?? "" } });
 * ```
 */
export interface AdminOptions {
  /** The secret an operator signs in with (at least 16 characters). */
  token: string;
  /** The page's path, which is also its socket's (default `/admin`). */
  path?: string | undefined;
  /**
   * Told of every action an operator takes (disconnects, test broadcasts), after it is done.
   * Default: a line on `console.info`. A hook that throws is reported to `console.error`.
   */
  onAction?: ((event: AdminActionEvent) => void) | undefined;
}

/** The dashboard's default path. */
export const ADMIN_PATH = "/admin";

/** The shortest token the dashboard takes. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;

/** Checks `admin` and returns it, or `undefined` when the dashboard is off. */
export function adminOptions(admin: AdminOptions | undefined | false): AdminOptions | undefined {
  if (admin === undefined || admin === false) return undefined;
  if (typeof admin.token !== "string" || admin.token.length < MIN_ADMIN_TOKEN_LENGTH) {
    throw new TypeError(
      `admin.token must be a string of at least ${MIN_ADMIN_TOKEN_LENGTH} characters (the dashboard's secret).`,
    );
  }
  if (admin.path !== undefined && !admin.path.startsWith("/")) {
    throw new TypeError(`admin.path must start with "/" (got ${JSON.stringify(admin.path)}).`);
  }
  return admin;
}

/** Whether `path` is the dashboard's (its page, and its socket). */
export function isAdminPath(path: string, admin: AdminOptions | undefined): boolean {
  return admin !== undefined && path === (admin.path ?? ADMIN_PATH);
}
