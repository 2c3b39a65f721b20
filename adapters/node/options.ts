// The Node adapter's options and what attaching returns: shared by node.ts and its parts.
// A leaf: it imports nothing of the adapter, which imports it.
import type { Server } from "node:http";
import type { RoutingOptions } from "../../src/adapter.ts";

/** Options of `attach`. */
export interface AttachOptions {
  /** Only upgrades to this path are served (e.g. `/ws`); default: every path. */
  path?: string | undefined;
  /**
   * Frames above this many bytes make `ws` close the socket with 1009 instead of reading
   * them; default four times the app's `maxMessageBytes`. Frames between the two get the
   * `MESSAGE_TOO_LARGE` error frame and the connection stays open.
   */
  maxPayload?: number | undefined;
  /**
   * With `path`: how long an upgrade to another path waits for another `upgrade` listener
   * of the server to take it before it is answered 404, in ms (default 10,000). When the
   * app is the server's only upgrade listener, such upgrades are answered 404 at once.
   */
  unclaimedTimeout?: number | undefined;
}

/** Options of `serve`: those of `attach`, the kit's `broadcast` and `docs`, and where to listen. */
export interface ServeOptions extends AttachOptions, Omit<RoutingOptions, "path"> {
  /** The port; default 8000. `0` picks a free one (read it from `server.port`). */
  port?: number | undefined;
  /** The interface to listen on; default `127.0.0.1`. Use `0.0.0.0` to accept from the network. */
  host?: string | undefined;
  /**
   * How many connections the kernel may hold waiting to be accepted (the listen backlog);
   * default 4096, where Node's is 511. A reconnect storm brings thousands at once: past the
   * backlog the kernel drops their SYNs, and each client waits 1, 3, 7 s... to retry. Linux
   * caps it at `net.core.somaxconn` (4096 since 5.4).
   */
  backlog?: number | undefined;
}

/** Options of a graceful shutdown. */
export interface CloseOptions {
  /**
   * How long frames already taken get to be answered before sockets are closed with 1001,
   * in ms (default 5000). Sockets that then do not finish the close handshake within two
   * seconds are cut off.
   */
  timeout?: number | undefined;
}

/** A running attachment of an app to an `http.Server`. */
export interface Attachment {
  /** Refuses new upgrades, closes open sockets with 1001 and resolves when they are closed. */
  close(options?: CloseOptions): Promise<void>;
}

/** A running server made by `serve`. */
export interface NodeServer extends Attachment {
  /** The underlying HTTP server. */
  readonly server: Server;
  /** The port it listens on. */
  readonly port: number;
  /** The WebSocket URL of the app, e.g. `ws://127.0.0.1:8000/`. */
  readonly url: string;
}
