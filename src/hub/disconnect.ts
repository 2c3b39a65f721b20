// Ending sessions from the server: every connection of a user, or one connection by id, on
// this instance; the hub asks the relay for the others.
import type { ErrorInfo } from "../context.ts";
import { utf8ByteLength } from "../protocol/utf8.ts";
import type { HubConnection } from "./subscriber.ts";

/** Whose connections to close: a user's (the app's `userId`), or one connection's. */
export type DisconnectTarget = { readonly user: string } | { readonly connection: string };

/** How to close them. */
export interface DisconnectOptions {
  /** The close code: 1000, 1001, 1008, 1011 or 3000–4999 (default 1008, policy). */
  code?: number | undefined;
  /** The close reason, at most 123 bytes (default `Disconnected by the server`). */
  reason?: string | undefined;
}

/** The default close of a disconnect. */
export const DISCONNECT_CODE = 1008;
export const DISCONNECT_REASON = "Disconnected by the server";

/**
 * The close code and reason of a disconnect, checked: a code a WebSocket may send, a reason
 * that fits a close frame. Throws a `RangeError` otherwise.
 */
export function closeOf(options: DisconnectOptions = {}): { code: number; reason: string } {
  const code = options.code ?? DISCONNECT_CODE;
  const reason = options.reason ?? DISCONNECT_REASON;
  if (!isSendableCode(code)) {
    throw new RangeError(`A close code must be 1000, 1001, 1008, 1011 or 3000-4999, not ${code}.`);
  }
  if (!isReason(reason)) {
    throw new RangeError("A close reason is at most 123 bytes of UTF-8.");
  }
  return { code, reason };
}

/** Whether `reason` fits a close frame: a string of at most 123 bytes of UTF-8. */
export function isReason(reason: unknown): reason is string {
  return typeof reason === "string" && utf8ByteLength(reason) <= 123;
}

/**
 * A user or connection id to disconnect, checked as every instance checks it (non-empty, at
 * most 256 characters); throws a `RangeError` otherwise.
 */
export function checkedId(id: string): string {
  if (typeof id !== "string" || !isName(id)) {
    throw new RangeError("A user or connection id is a string of 1 to 256 characters.");
  }
  return id;
}

/** Whether `code` is one a server may close with. */
export function isSendableCode(code: unknown): code is number {
  return (
    typeof code === "number" &&
    Number.isInteger(code) &&
    (code === 1000 ||
      code === 1001 ||
      code === 1008 ||
      code === 1011 ||
      (code >= 3000 && code <= 4999))
  );
}

/** A target as a broker's message carries it, checked; `undefined` when malformed. */
export function targetFrom(value: unknown): DisconnectTarget | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const { user, connection } = value as { user?: unknown; connection?: unknown };
  if (typeof user === "string" && connection === undefined && isName(user)) return { user };
  if (typeof connection === "string" && user === undefined && isName(connection)) {
    return { connection };
  }
  return undefined;
}

function isName(value: string): boolean {
  return value !== "" && value.length <= 256;
}

/**
 * Closes the connections here that `target` names; returns how many. A `userId` that
 * throws for a connection is reported and the connection left open.
 */
export function disconnectHere(
  connections: Iterable<HubConnection>,
  byId: (id: string) => HubConnection | undefined,
  userOf: ((connection: HubConnection) => string | undefined) | undefined,
  target: DisconnectTarget,
  close: { code: number; reason: string },
  report: (error: unknown, info: ErrorInfo) => void,
): number {
  const chosen: HubConnection[] = [];
  if ("connection" in target) {
    const connection = byId(target.connection);
    if (connection?.isOpen) chosen.push(connection);
  } else if (userOf) {
    for (const connection of connections) {
      if (!connection.isOpen) continue;
      try {
        if (userOf(connection) === target.user) chosen.push(connection);
      } catch (error) {
        report(error, { connection, phase: "disconnect" });
      }
    }
  }
  for (const connection of chosen) connection.close(close.code, close.reason);
  return chosen.length;
}
