// The connection's status and, when the server refused it, the refusal.
import { useSyncExternalStore } from "react";
import type { SocketAPIClientError } from "../client/client-error.ts";
import type { ConnectionStatus } from "../client/client-options.ts";
import { useSocketAPIContext } from "./context.ts";

/** What `useConnection` returns. */
export interface ConnectionState {
  /** `connecting` (also before the provider mounted, and on a server), `open`, `reconnecting`, `closed`. */
  readonly status: ConnectionStatus;
  /** Why the server refused the connection (401, 403, ...), once it did; else `undefined`. */
  readonly refusal: SocketAPIClientError | undefined;
}

const refusals = new WeakMap<object, SocketAPIClientError>();

/** The connection's status and its refusal, re-rendering when either changes. */
export function useConnection(): ConnectionState {
  const { client } = useSocketAPIContext();
  const status = useSyncExternalStore<ConnectionStatus>(
    (changed) => {
      if (!client) return () => {};
      const stopStatus = client.onStatus(changed);
      const stopErrors = client.onError((error) => {
        if (error.code === "REFUSED") {
          refusals.set(client, error);
          changed();
        }
      });
      return () => {
        stopStatus();
        stopErrors();
      };
    },
    () => client?.status ?? "connecting",
    () => "connecting",
  );
  return { status, refusal: client ? refusals.get(client) : undefined };
}
