// What the provider hands its hooks: the client (none until mounted: no socket on the
// server, nor during the first render), and the channels its components listen to.
import { createContext, useContext } from "react";
import type { SocketAPIClient } from "../client/client.ts";
import type { SharedChannels } from "./shared-channels.ts";

/** The provider's client and its shared channels; `client` is `null` before mount and on a server. */
export interface SocketAPIContextValue {
  readonly client: SocketAPIClient<unknown> | null;
  readonly channels: SharedChannels | null;
}

export const SocketAPIContext = createContext<SocketAPIContextValue | null>(null);

/** The nearest provider's value; throws outside one, saying so. */
export function useSocketAPIContext(): SocketAPIContextValue {
  const value = useContext(SocketAPIContext);
  if (!value) {
    throw new Error("socketapi/react: this hook needs a <SocketAPIProvider> above it.");
  }
  return value;
}
