import { errorText } from "../protocol/encode.ts";
import { checkFrame, errorFrame, parseFrame } from "../protocol/parse.ts";
import { ErrorCode, type ErrorFrame, ErrorMessage } from "../protocol/protocol.ts";
import type { Limits } from "./limits.ts";
import { TokenBucket, Violations } from "./rate-limiter.ts";

/**
 * A run of refused frames waiting their turn to be answered: one entry however many, so
 * that refusals never grow the queue past its bound.
 */
export class Refusals {
  readonly message: string;
  readonly text: string;
  count = 1;

  constructor(message: string) {
    this.message = message;
    this.text = errorText(ErrorCode.RATE_LIMITED, message, undefined);
  }
}

/** The longest text taken for a cancel frame when looking for one (a name, an id, the envelope). */
const MAX_CANCEL_LENGTH = 1024;

/** A binary frame a codec decoded (`socketapi.msgpack`): the value, checked in its turn. */
export class DecodedFrame {
  readonly value: unknown;
  /** Its size as it came, in bytes: what it counts toward `maxQueuedBytes`. */
  readonly size: number;

  constructor(value: unknown, size: number) {
    this.value = value;
    this.size = size;
  }
}

/**
 * A frame waiting its turn: its text, a decoded binary frame, an error frame to send
 * (binary, too large), or refusals.
 */
export type QueuedFrame = string | DecodedFrame | ErrorFrame | Refusals;

/** What the intake needs from the connection it feeds. */
export interface IntakeOwner {
  /** The app's limits. */
  readonly limits: Limits;
  /** Serves one frame; a promise when it has to wait (it never rejects). */
  serveFrame(frame: QueuedFrame): Promise<void> | undefined;
  /** Sends a text frame to the client. */
  answer(text: string): unknown;
  /** Too many refusals: the client is abusive. */
  closeForAbuse(): void;
  /** A frame was refused: over the rate limit, or the queue was full. */
  refused(by: "rate" | "queue"): void;
  /** Nothing is waiting or running any more. */
  settled(): void;
}

/**
 * The frames of one connection on their way to being served: in arrival order, up to the
 * app's concurrency at once, within its limits. Over the rate limit, or when the frames
 * waiting would pass `maxQueuedMessages` or `maxQueuedBytes`, a frame is answered
 * RATE_LIMITED in its turn and not kept; too many refusals close the connection (1008).
 * Made with a connection's first frame: an idle connection never pays for it.
 */
export class Intake {
  readonly #owner: IntakeOwner;
  /** Frames waiting their turn; made when a frame first has to wait. */
  #queue: QueuedFrame[] | undefined;
  /** The size of the frames in the queue, in UTF-16 units (bytes, for ASCII JSON). */
  #queuedSize = 0;
  #inFlight = 0;
  #pumping = false;
  #bucket: TokenBucket | undefined;
  #violations: Violations | undefined;
  /** Who waits for the frames taken to be served; set once draining (it takes no more). */
  #onDrained: (() => void)[] | undefined;

  constructor(owner: IntakeOwner) {
    this.#owner = owner;
  }

  /** Queue entries waiting their turn (a run of refusals is one). */
  get queuedEntries(): number {
    return this.#queue?.length ?? 0;
  }

  /**
   * Whether it holds nothing worth keeping between frames (nothing waiting or running, no
   * rate limit's bucket, no refusals counted, no drain): the connection may let it go and
   * make a new one with its next frame, so that a connection that is not rate limited
   * keeps nothing for its frames while none is being served.
   */
  get keepsNothing(): boolean {
    return (
      this.#inFlight === 0 &&
      !this.#pumping &&
      !this.#queue?.length &&
      this.#bucket === undefined &&
      this.#violations === undefined &&
      this.#onDrained === undefined
    );
  }

  /** Takes a frame of `size` (its text's length; 0 for an error frame to send). */
  take(frame: string | DecodedFrame | ErrorFrame, size: number): void {
    if (this.#onDrained) return;
    const refusal = this.#refusal(size);
    if (refusal !== undefined) {
      this.#refuse(refusal);
      return;
    }
    // The common case: nothing waiting, nothing running. Serve at once, without a queue.
    if (!this.#pumping && !this.#queue?.length && this.#inFlight < this.#owner.limits.concurrency) {
      this.#pumping = true;
      this.#run(frame);
      this.#pumping = false;
      this.#settled();
      return;
    }
    // A cancel does not wait behind the request it cancels: it is served now, and a
    // request it names that is still waiting its turn is answered CANCELLED in that turn.
    if ((typeof frame === "string" || frame instanceof DecodedFrame) && this.#cancelledNow(frame)) {
      return;
    }
    this.#queue ??= [];
    this.#queue.push(frame);
    this.#queuedSize += size;
    this.#pump();
  }

  /** Serves `frame` at once if it is a cancel (and cancels what waits); says whether it was. */
  #cancelledNow(frame: string | DecodedFrame): boolean {
    const { maxNameLength } = this.#owner.limits;
    let cancel: ReturnType<typeof parseFrame>;
    if (typeof frame === "string") {
      if (frame.length > MAX_CANCEL_LENGTH || !frame.includes('"cancel"')) return false;
      cancel = parseFrame(frame, maxNameLength);
    } else {
      if ((frame.value as { type?: unknown } | null)?.type !== "cancel") return false;
      cancel = checkFrame(frame.value, maxNameLength);
    }
    if (cancel.type !== "cancel") return false;
    const queue = this.#queue ?? [];
    for (let i = 0; i < queue.length; i++) {
      const waiting = queue[i];
      let request: ReturnType<typeof parseFrame>;
      if (typeof waiting === "string") {
        if (!waiting.includes(cancel.channel)) continue;
        request = parseFrame(waiting, maxNameLength);
      } else if (waiting instanceof DecodedFrame) {
        request = checkFrame(waiting.value, maxNameLength);
      } else continue;
      if (
        request.type !== "action" ||
        request.channel !== cancel.channel ||
        request.id !== cancel.id
      ) {
        continue;
      }
      // Answered now, not in its turn: the client matches it by its id.
      this.#queuedSize -= typeof waiting === "string" ? waiting.length : waiting.size;
      queue.splice(i--, 1);
      const cancelled = errorFrame(
        ErrorCode.CANCELLED,
        ErrorMessage.cancelled,
        cancel.id,
        cancel.channel,
      );
      this.#owner.answer(JSON.stringify(cancelled));
    }
    this.#owner.serveFrame(frame);
    return true;
  }

  /** Stops taking frames; resolves once those taken are served. */
  drain(): Promise<void> {
    this.#onDrained ??= [];
    const waiting = this.#onDrained;
    if (this.#inFlight === 0 && !this.#queue?.length) return Promise.resolve();
    return new Promise((resolve) => waiting.push(resolve));
  }

  /** Drops every frame waiting, and releases whoever waits for a drain: the socket closed. */
  clear(): void {
    this.#queue = undefined;
    this.#queuedSize = 0;
    for (const resolve of this.#onDrained?.splice(0) ?? []) resolve();
  }

  /**
   * Why a new frame of `size` may not be taken, if it may not: over the rate limit, or it
   * would have to wait in a queue already at its length or size.
   */
  #refusal(size: number): string | undefined {
    const limits = this.#owner.limits;
    if (limits.rateLimit !== false) {
      this.#bucket ??= new TokenBucket(limits.rateLimit);
      if (!this.#bucket.take()) {
        this.#owner.refused("rate");
        return ErrorMessage.rateLimited(limits.rateLimit.messagesPerSecond);
      }
    }
    const waiting = this.#queue?.length ?? 0;
    if (waiting === 0 && !this.#pumping && this.#inFlight < limits.concurrency) return undefined;
    if (waiting >= limits.maxQueuedMessages) {
      this.#owner.refused("queue");
      return ErrorMessage.queueFull(limits.maxQueuedMessages);
    }
    if (this.#queuedSize + size > limits.maxQueuedBytes) {
      this.#owner.refused("queue");
      return ErrorMessage.queueBytesFull(limits.maxQueuedBytes);
    }
    return undefined;
  }

  /**
   * Answers a refused frame with RATE_LIMITED in its turn, without keeping the frame: a run
   * of refusals is one queue entry. Too many refusals in a row close the connection.
   */
  #refuse(message: string): void {
    const { maxViolations } = this.#owner.limits;
    this.#violations ??= new Violations();
    if (this.#violations.add(maxViolations) > maxViolations) {
      this.#owner.closeForAbuse();
      return;
    }
    const queue = this.#queue;
    if (!queue?.length && !this.#pumping && this.#inFlight === 0) {
      this.#owner.answer(errorText(ErrorCode.RATE_LIMITED, message, undefined));
      return;
    }
    const last = queue?.[queue.length - 1];
    if (last instanceof Refusals && last.message === message) last.count++;
    else {
      this.#queue ??= [];
      this.#queue.push(new Refusals(message));
    }
  }

  /** Serves queued frames in order, up to the app's concurrency. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      const { concurrency } = this.#owner.limits;
      while (this.#queue?.length && this.#inFlight < concurrency) {
        const frame = this.#queue.shift() as QueuedFrame;
        if (typeof frame === "string") this.#queuedSize -= frame.length;
        else if (frame instanceof DecodedFrame) this.#queuedSize -= frame.size;
        this.#run(frame);
      }
    } finally {
      this.#pumping = false;
    }
    this.#settled();
  }

  /** Serves one frame; one that has to wait holds a place until it is done. */
  #run(frame: QueuedFrame): void {
    const pending = this.#owner.serveFrame(frame);
    if (!pending) return;
    this.#inFlight++;
    void pending.then(() => {
      this.#inFlight--;
      this.#pump();
    });
  }

  /** When nothing is left to serve: the owner's idle hook, and a shutdown waiting to drain. */
  #settled(): void {
    if (this.#inFlight !== 0 || this.#queue?.length) return;
    this.#owner.settled();
    if (this.#onDrained?.length) for (const resolve of this.#onDrained.splice(0)) resolve();
  }
}
