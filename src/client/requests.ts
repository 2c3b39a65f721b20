/** The client's requests waiting for their answers, and how an answer finds its request. */
import type { RequestId } from "../protocol/protocol.ts";
import { ClientErrorCode, SocketAPIClientError } from "./client-error.ts";

/** A place in a channel's stream, as the server's frames gave it. */
export interface Position {
  offset: number;
  epoch: string;
}

/** A request sent (or to be sent once the connection is open), waiting for its answer. */
export interface Pending {
  readonly id: RequestId | undefined;
  readonly type: "action" | "subscribe" | "unsubscribe";
  readonly channel: string;
  /** The frame, serialized when it is sent (as JSON text, or in the connection's codec). */
  readonly frame: Record<string, unknown>;
  /** Whether it went out on the current connection. */
  sent: boolean;
  resolve(value: unknown): void;
  reject(error: SocketAPIClientError): void;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Where a streaming action's chunks go, before its answer. */
  readonly onChunk: ((data: unknown) => void) | undefined;
}

/** The answer's type for each request's. */
const ANSWER_TYPE = {
  action: "action",
  subscribe: "subscribed",
  unsubscribe: "unsubscribed",
} as const;

/**
 * The requests in the order they were made, each with its timeout. Answers carry the
 * request's id, or none (SocketAPI 0.2 in Python): those are matched in order, by type and
 * channel.
 */
export class Requests {
  /** In the order they were made: answers without ids are matched in this order. */
  #pending: Pending[] = [];
  #nextId = 1;
  readonly #ids: boolean;
  readonly #timeout: number;

  constructor(options: { readonly ids: boolean; readonly timeout: number }) {
    this.#ids = options.ids;
    this.#timeout = options.timeout;
  }

  /**
   * A new request, waiting until its answer, or rejected with `TIMEOUT`; `sent` is up to
   * the caller ({@link unsent} gives the ones to send once the connection opens).
   */
  make(
    type: Pending["type"],
    channel: string,
    data: unknown,
    since?: Position,
    presence?: boolean,
    onChunk?: (data: unknown) => void,
  ): { readonly pending: Pending; readonly answer: Promise<unknown> } {
    const id = this.#ids ? this.#nextId++ : undefined;
    const frame: Record<string, unknown> = { type, channel };
    if (data !== undefined) frame.data = data;
    if (since !== undefined) frame.since = since;
    if (presence) frame.presence = true;
    if (id !== undefined) frame.id = id;
    let pending: Pending | undefined;
    const answer = new Promise<unknown>((resolve, reject) => {
      const made: Pending = {
        id,
        type,
        channel,
        frame,
        sent: false,
        resolve,
        reject,
        timer: undefined,
        onChunk,
      };
      this.#arm(made);
      pending = made;
    });
    this.#pending.push(pending as Pending);
    return { pending: pending as Pending, answer };
  }

  /** Starts (again) the wait for `pending`'s answer: a stream's timeout runs from its last chunk. */
  #arm(pending: Pending): void {
    clearTimeout(pending.timer);
    const timeout = this.#timeout;
    pending.timer = setTimeout(() => {
      this.settle(pending);
      pending.reject(
        new SocketAPIClientError(ClientErrorCode.TIMEOUT, `No answer within ${timeout} ms.`, {
          channel: pending.channel,
        }),
      );
    }, timeout);
  }

  /** A chunk of the streaming action `pending`: its timeout starts again, its reader gets it. */
  chunk(pending: Pending, data: unknown): void {
    this.#arm(pending);
    pending.onChunk?.(data);
  }

  /** The requests not sent on the current connection yet, in order. */
  unsent(): Pending[] {
    return this.#pending.filter((pending) => !pending.sent);
  }

  /**
   * The request an answer is for: by id (an answer with an id no request waiting has is for
   * none: a request cancelled here, answered after), else the oldest that fits its type
   * and channel.
   */
  match(type: unknown, channel: unknown, id: RequestId | undefined): Pending | undefined {
    if (id !== undefined) return this.#pending.find((p) => p.id === id);
    return this.#pending.find(
      (p) =>
        p.sent &&
        (type === "error"
          ? channel === undefined || channel === p.channel
          : ANSWER_TYPE[p.type] === type && channel === p.channel),
    );
  }

  /** The streaming action a chunk is for: by id, else the oldest action sent on its channel. */
  streaming(channel: unknown, id: RequestId | undefined): Pending | undefined {
    return this.#pending.find((p) =>
      id !== undefined
        ? p.id === id && p.type === "action"
        : p.sent && p.type === "action" && p.channel === channel,
    );
  }

  /** The request is answered (or failed): it waits no more. */
  settle(pending: Pending): void {
    clearTimeout(pending.timer);
    this.#pending = this.#pending.filter((p) => p !== pending);
  }

  /** Fails the requests `which` picks with the error `errorOf` gives each. */
  fail(which: (pending: Pending) => boolean, errorOf: (pending: Pending) => SocketAPIClientError) {
    for (const pending of this.#pending.filter(which)) {
      this.settle(pending);
      pending.reject(errorOf(pending));
    }
  }
}
