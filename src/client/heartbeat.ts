/** The client's heartbeat: a ping every interval, and a connection given up when silent. */

/** How often a ping goes, and how long the client waits for anything to come back (ms). */
export interface HeartbeatOptions {
  readonly interval?: number | undefined;
  readonly timeout?: number | undefined;
}

/**
 * Sends `{"type":"ping"}` every `interval` ms (default 25,000) while started; when nothing
 * is {@link heard} within `timeout` ms (default 10,000) of a ping, the connection is dead
 * even if the socket does not know it: `dead` is called.
 */
export class Heartbeat {
  readonly #options: HeartbeatOptions | false | undefined;
  readonly #ping: () => void;
  readonly #dead: () => void;
  #interval: ReturnType<typeof setInterval> | undefined;
  #silence: ReturnType<typeof setTimeout> | undefined;

  constructor(options: HeartbeatOptions | false | undefined, ping: () => void, dead: () => void) {
    this.#options = options;
    this.#ping = ping;
    this.#dead = dead;
  }

  /** Starts pinging (a connection opened); `false` options never do. */
  start(): void {
    const options = this.#options;
    if (options === false) return;
    this.#interval = setInterval(() => {
      this.#ping();
      if (this.#silence === undefined) {
        this.#silence = setTimeout(() => this.#dead(), options?.timeout ?? 10_000);
      }
    }, options?.interval ?? 25_000);
  }

  /** Something came from the server: the connection is alive. */
  heard(): void {
    clearTimeout(this.#silence);
    this.#silence = undefined;
  }

  /** Stops pinging and waiting (the connection dropped or closed). */
  stop(): void {
    clearInterval(this.#interval);
    this.heard();
  }
}
