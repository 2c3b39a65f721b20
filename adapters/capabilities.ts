// What each runtime's adapter can and cannot do, in one place: the adapters export their
// own (`capabilities` of socketapi/node, /bun, /deno, /cloudflare), the cross-runtime
// suite skips by these flags, and the docs name them. Plain data: no runtime imports, so
// that every runtime can read every runtime's flags.

/** What the adapter for Node (`socketapi/node`, on `ws`) can and cannot do. */
export const nodeCapabilities = {
  /** A frame over `maxPayload` closes the socket with 1009 before it is read. */
  hardFrameLimit: true,
  /** Node has no pub/sub of its own: broadcasts loop over the subscribers, writes corked. */
  nativePubSub: false,
  /** `close()` closes every socket with 1001 before the server stops. */
  gracefulShutdown: true,
  /** `maxConnections` refuses upgrades with 503. */
  connectionLimit: true,
  /** Idle sockets are pinged; one silent for `idleTimeout` is dropped. */
  deadPeers: true,
  /** A client that stops reading is closed with 1013 at `maxBufferedBytes`. */
  slowConsumers: true,
  /** A connection closed for abuse gets its close frame (1008) even while it floods. */
  cleanCloseUnderFlood: true,
  /**
   * `compression` negotiates permessage-deflate (`ws`): windows of `windowBits`, no context
   * kept; inflating stops at `maxPayload`, counted inflated (1009); a frame is deflated once
   * for all the sockets it is sent to in a turn.
   */
  compression: true,
  /**
   * `fallback: true` on `serve` answers Server-Sent Events and POSTs for clients that cannot
   * open a WebSocket (`attach` leaves plain requests to the server it is attached to).
   */
  fallback: true,
} as const;

/** What the adapter for Bun (`socketapi/bun`) can and cannot do. */
export const bunCapabilities = {
  /** A frame over four times `maxMessageBytes` closes the socket with 1009 before it is read. */
  hardFrameLimit: true,
  /** Broadcasts go through the runtime's own pub/sub. */
  nativePubSub: true,
  /** `shutdown(server)` closes every socket with 1001 before the server stops. */
  gracefulShutdown: true,
  /** `maxConnections` refuses upgrades with 503. */
  connectionLimit: true,
  /** Bun pings idle sockets and drops silent ones (`idleTimeout`, at least 8 seconds in Bun). */
  deadPeers: true,
  /** A client that stops reading is closed at `maxBufferedBytes` (by Bun's backpressure limit). */
  slowConsumers: true,
  /** A connection closed for abuse gets its close frame (1008) even while it floods. */
  cleanCloseUnderFlood: true,
  /**
   * `compression` negotiates permessage-deflate with uWS's shared compressor and
   * decompressor (no zlib memory per socket; `windowBits` and `level` do not apply);
   * inflating stops at `maxPayloadLength`, counted inflated (1009).
   */
  compression: true,
  /** `fallback: true` answers Server-Sent Events and POSTs (Bun's own streaming responses). */
  fallback: true,
} as const;

/** What the adapter for Deno and Deno Deploy (`socketapi/deno`) can and cannot do. */
export const denoCapabilities = {
  /**
   * `Deno.upgradeWebSocket` has no option to refuse a frame before reading it: every frame
   * is read whole, then one over `maxMessageBytes` gets `MESSAGE_TOO_LARGE`. There is no
   * close with 1009.
   */
  hardFrameLimit: false,
  /** Deno has no pub/sub of its own: broadcasts loop over the subscribers in memory. */
  nativePubSub: false,
  /** `shutdown()` closes every socket with 1001. */
  gracefulShutdown: true,
  /** `maxConnections` refuses upgrades with 503. */
  connectionLimit: true,
  /** Deno pings idle sockets and drops silent ones (`idleTimeout`). */
  deadPeers: true,
  /** A client that stops reading is closed with 1013 at `maxBufferedBytes`. */
  slowConsumers: true,
  /**
   * Deno drops a connection that keeps sending after the server's close frame: a client
   * closed for abuse sees 1006, not 1008.
   */
  cleanCloseUnderFlood: false,
  /**
   * `Deno.upgradeWebSocket` never negotiates permessage-deflate (a client's offer gets no
   * `Sec-WebSocket-Extensions`): `compression` has no effect; a frame marked compressed
   * is a protocol error (1002). `socketapi/node` on Deno compresses.
   */
  compression: false,
  /** `fallback: true` answers Server-Sent Events and POSTs. */
  fallback: true,
} as const;

/** What the adapter for Cloudflare Workers (`socketapi/cloudflare`, Durable Objects) can and cannot do. */
export const workersCapabilities = {
  /**
   * A Durable Object receives frames up to 32 MiB whole; there is no option to refuse a
   * frame before it is read. One over `maxMessageBytes` gets `MESSAGE_TOO_LARGE`.
   */
  hardFrameLimit: false,
  /** Broadcasts reach each object's sockets in the object; across objects over RPC. */
  nativePubSub: false,
  /** `{"type":"ping"}` is answered by the runtime without waking the object. */
  pingWithoutWaking: true,
  /**
   * Workers have no shutdown hook: on a deploy the platform disconnects the objects'
   * sockets itself (clients see 1006 in `wrangler dev`). Clients reconnect.
   */
  gracefulShutdown: false,
  /** `maxConnections` holds per object: the object refuses the upgrade with 503. */
  connectionLimit: true,
  /**
   * Cloudflare's runtime watches the connections of a hibernating object itself; the
   * object does not ping them (that would wake it).
   */
  deadPeers: false,
  /**
   * A Durable Object cannot see how much a socket has not sent (no `bufferedAmount`): the
   * platform buffers for slow readers.
   */
  slowConsumers: false,
  /** A connection closed for abuse gets its close frame (1008) even while it floods. */
  cleanCloseUnderFlood: true,
  /**
   * Compression is the Worker's compatibility flag, not the adapter's: without
   * `no_web_socket_compression` workerd deflates every frame it sends and inflates what it
   * receives up to its own 32 MiB (1009 past it), before `maxMessageBytes` can refuse it.
   * The app's `compression` only says which of the two is meant (a warning otherwise).
   */
  compression: "runtime",
  /**
   * No fallback transport: a Durable Object hibernates only with WebSockets; an SSE
   * response would keep it awake (and billed) for as long as the client stays, and every
   * POST would have to find the object that holds the stream. Clients on Workers use the
   * WebSocket, which Cloudflare's network passes through proxies as HTTPS.
   */
  fallback: false,
} as const;
