// The hooks of the example, typed from its server (a type-only import: no server code in
// the page's bundle).
import { createSocketAPIHooks } from "socketapi/react";
import type app from "./server.ts";

export const { SocketAPIProvider, useAction, useChannel, usePresence, useStream, useConnection } =
  createSocketAPIHooks<typeof app>();
