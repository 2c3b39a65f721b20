// One client per provider, made once the provider is mounted in a browser (never on a
// server: no socket is opened while rendering HTML, and hydration opens it). Under
// StrictMode the provider mounts, unmounts and mounts again at once: the client is closed
// only a moment after an unmount that no mount follows, so one socket serves both.
import { createElement, type ReactNode, useEffect, useRef, useState } from "react";
import { createClient, type SocketAPIClient } from "../client/client.ts";
import type { ClientOptions } from "../client/client-options.ts";
import { SocketAPIContext, type SocketAPIContextValue } from "./context.ts";
import { RELEASE_DELAY, SharedChannels } from "./shared-channels.ts";

/** Props of `SocketAPIProvider`: where to connect, and the client's options. */
export interface SocketAPIProviderProps {
  /** The server's WebSocket URL, e.g. `ws://127.0.0.1:8000/`. */
  url: string;
  /** The typed client's options (`token`, `reconnect`, `codec`, `fallback`, ...). */
  options?: ClientOptions | undefined;
  children?: ReactNode;
}

interface Held {
  readonly url: string;
  readonly client: SocketAPIClient<unknown>;
  readonly channels: SharedChannels;
  close: ReturnType<typeof setTimeout> | undefined;
}

const EMPTY: SocketAPIContextValue = { client: null, channels: null };

/** Holds one client for the components under it; see `createSocketAPIHooks`. */
export function SocketAPIProvider({ url, options, children }: SocketAPIProviderProps): ReactNode {
  const held = useRef<Held | undefined>(undefined);
  const [value, setValue] = useState<SocketAPIContextValue>(EMPTY);
  // The options are read when the client is made; a new URL makes a new client.
  const optionsRef = useRef(options);
  optionsRef.current = options;
  useEffect(() => {
    let current = held.current;
    if (current && current.url === url && current.close !== undefined) {
      clearTimeout(current.close);
      current.close = undefined;
    } else {
      const client = createClient(url, optionsRef.current);
      current = { url, client, channels: new SharedChannels(client), close: undefined };
      held.current = current;
    }
    const mine = current;
    setValue({ client: mine.client, channels: mine.channels });
    return () => {
      mine.close = setTimeout(() => {
        if (held.current === mine) held.current = undefined;
        mine.client.close();
      }, RELEASE_DELAY);
    };
  }, [url]);
  return createElement(SocketAPIContext.Provider, { value }, children);
}
