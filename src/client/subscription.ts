/** One channel the client is subscribed to: its listeners, its place in the stream, its presence. */
import type { DataInfo, Listener, Member, SubscriptionHandlers } from "./client-types.ts";
import type { Position } from "./requests.ts";

/** Calls a listener of the app, whose failure goes to `onError`, not up the socket's event. */
export type CallListener = <T, U>(
  listener: (value: T, extra: U) => void,
  value: T,
  extra?: U,
) => void;

/** The parts of a `subscribed` answer the client reads. */
export interface SubscribedAnswer {
  offset?: unknown;
  epoch?: unknown;
  recovered?: unknown;
  members?: unknown;
  count?: unknown;
}

/**
 * A subscription of the client: one per channel name, shared by its listeners, sent again
 * after a reconnect. On a channel with history it keeps the last broadcast's position to
 * recover from; with presence, its handlers hear the members, joins and leaves.
 */
export class Subscription {
  readonly params: Record<string, unknown> | undefined;
  readonly listeners = new Set<Listener<unknown>>();
  /** What runs when missed broadcasts could not be recovered. */
  readonly resets = new Set<(info: { readonly channel: string }) => void>();
  /** The handlers that asked for presence: members, joins, leaves. */
  readonly presence = new Set<SubscriptionHandlers<unknown>>();
  /** On a channel with history: the last broadcast received (or the start), to recover from. */
  position: Position | undefined;
  /** While broadcasts missed are being sent again: the offset of the last of them. */
  recoveringUntil: number | undefined;
  /** The position the subscribe in flight asked to recover from. */
  asked: Position | undefined;
  /** Whether the last subscribe sent asked for presence. */
  askedPresence = false;
  /** The server confirmed it on the current connection. */
  confirmed = false;
  /** A subscribe frame is queued or waiting for its answer. */
  inFlight = false;
  /** Resubscribes that timed out in a row, for the backoff before the next. */
  retries = 0;
  /** Settles with the first confirmation, or the server's refusal. */
  readonly ready: Promise<void>;
  /** The app read `ready`: a refusal is its to handle, not `onError`'s. */
  readyTaken = false;
  /** `ready` settled already. */
  readySettled = false;
  readonly #call: CallListener;
  #confirm: () => void = () => {};
  #refuse: (error: unknown) => void = () => {};

  constructor(params: Record<string, unknown> | undefined, call: CallListener) {
    this.params = params;
    this.#call = call;
    this.ready = new Promise<void>((resolve, reject) => {
      this.#confirm = resolve;
      this.#refuse = reject;
    });
    // Awaiting `ready` is optional: a refusal nobody awaits goes to `onError`, not unhandled.
    this.ready.catch(() => {});
  }

  /** The server confirmed it (`ready` resolves, the first time). */
  confirm(): void {
    this.readySettled = true;
    this.#confirm();
  }

  /** The server refused it (`ready` rejects, unless it settled before). */
  refuse(error: unknown): void {
    this.readySettled = true;
    this.#refuse(error);
  }

  /** A data frame: its position kept, then every listener called. */
  data(channel: string, data: unknown, offset: unknown, epoch: unknown): void {
    let info: DataInfo = { channel, recovered: false };
    if (typeof offset === "number" && typeof epoch === "string") {
      const until = this.recoveringUntil;
      const recovered = until !== undefined && offset <= until;
      if (until !== undefined && offset >= until) this.recoveringUntil = undefined;
      this.position = { offset, epoch };
      info = { channel, offset, epoch, recovered };
    }
    for (const listener of [...this.listeners]) this.#call(listener, data, info);
  }

  /** A member joined or left: the presence handlers hear it. */
  presenceEvent(type: "join" | "leave", frame: Member): void {
    const member = type === "join" ? { user: frame.user, info: frame.info } : { user: frame.user };
    for (const handlers of [...this.presence]) {
      const handler = type === "join" ? handlers.join : handlers.leave;
      if (handler) this.#call(handler as (member: unknown) => void, member);
    }
  }

  /**
   * The `subscribed` answer on channel `name`: the members go to the presence handlers. On
   * a channel with history, recovering, the missed broadcasts follow and move the position
   * on; otherwise it starts where the stream is now, and a subscription that had a
   * position was reset.
   */
  positioned(name: string, answer: SubscribedAnswer): void {
    if (Array.isArray(answer.members)) {
      const count = typeof answer.count === "number" ? answer.count : answer.members.length;
      for (const handlers of [...this.presence]) {
        if (handlers.members) this.#call(handlers.members, answer.members as Member[], count);
      }
    }
    const since = this.asked;
    this.asked = undefined;
    const { offset, epoch } = answer;
    const at =
      typeof offset === "number" && typeof epoch === "string" ? { offset, epoch } : undefined;
    if (since && answer.recovered === true && at) {
      this.recoveringUntil = at.offset > since.offset ? at.offset : undefined;
      return;
    }
    this.position = at;
    this.recoveringUntil = undefined;
    if (since) for (const reset of [...this.resets]) this.#call(reset, { channel: name });
  }
}
