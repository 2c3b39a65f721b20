import { isAsyncIterable } from "../async-iterable.ts";
import { ChunkFrames, errorText } from "../protocol/encode.ts";
import { ErrorCode, ErrorMessage } from "../protocol/protocol.ts";
import { answerCompleted, answerFailure, stopped, timedOut } from "./answers.ts";
import type { FrameContext } from "./handler-context.ts";
import type { Cancellation } from "./running-requests.ts";
import type { StreamingConnection } from "./served-connection.ts";

/** Answers an action's result: a stream is served chunk by chunk, any other value at once. */
export function answerResult(session: StreamingConnection, ctx: FrameContext, result: unknown) {
  if (isAsyncIterable(result)) serveStream(session, ctx, result);
  else answerCompleted(session, ctx, result);
}

/**
 * Serves a streaming action's answer: each value the iterable yields as a `chunk` frame
 * with the request's id, then its return value as `completed` (or its error as the
 * error it would be for any action). It holds no place of the connection's concurrency;
 * at most `maxStreams` are open per connection.
 *
 * The iterable is pulled only while the socket's send buffer is under
 * `streamHighWaterMark`: a generator that yields as fast as it can waits for the client to
 * read. `handlerTimeout` bounds the wait for each chunk, `streamTimeout` the whole stream;
 * a `cancel` frame or the connection's close stop it. Stopped, the iterable's `return()`
 * is called (a generator's `finally` runs, once the await it is in settles).
 */
export function serveStream(
  session: StreamingConnection,
  ctx: FrameContext,
  source: AsyncIterable<unknown>,
): void {
  if (ctx.ended || session.closed) {
    closeQuietly(session, ctx, source);
    return;
  }
  const { maxStreams } = session.host.limits;
  if (session.running.streams >= maxStreams) {
    ctx.ended = true;
    ctx.trace?.end(ErrorCode.TOO_MANY_STREAMS);
    session.answer(
      errorText(
        ErrorCode.TOO_MANY_STREAMS,
        ErrorMessage.tooManyStreams(maxStreams),
        ctx.id,
        ctx.name,
      ),
    );
    closeQuietly(session, ctx, source);
    return;
  }
  let iterator: AsyncIterator<unknown>;
  try {
    iterator = source[Symbol.asyncIterator]();
  } catch (error) {
    answerFailure(session, ctx, "action", error);
    return;
  }
  void new ActionStream(session, ctx, iterator).run();
}

/**
 * One open stream: pulls its iterator, writes its chunks, ends it once. Per chunk it does
 * no more than the generator's own `next()` and the write: its time limits are two timers
 * for the whole stream (the idle one re-armed only when it fires early), and it looks at
 * the send buffer once per high-water mark written, not per chunk.
 */
class ActionStream {
  readonly #session: StreamingConnection;
  readonly #ctx: FrameContext;
  readonly #iterator: AsyncIterator<unknown>;
  /** When the chunk being waited for was asked for (`Date.now()`); 0 while not waiting. */
  #pulledAt = 0;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #totalTimer: ReturnType<typeof setTimeout> | undefined;
  #untrack: (() => void) | undefined;
  /** Wakes the wait for room in the send buffer when the stream stops. */
  #wake: (() => void) | undefined;
  #finished = false;
  /** What it wrote since it last let the runtime run (and write): bytes, for ASCII. */
  #sinceYield = 0;

  constructor(session: StreamingConnection, ctx: FrameContext, iterator: AsyncIterator<unknown>) {
    this.#session = session;
    this.#ctx = ctx;
    this.#iterator = iterator;
  }

  async run(): Promise<void> {
    const session = this.#session;
    const ctx = this.#ctx;
    const { streamTimeout, handlerTimeout, streamHighWaterMark } = session.host.limits;
    const { telemetry } = session.host;
    session.running.streamOpened();
    telemetry.stream(ctx.name, 1);
    if (ctx.id !== undefined) {
      this.#untrack = session.running.track(ctx.name, ctx.id, (why) => this.#stop(why));
    }
    if (streamTimeout !== false) {
      this.#totalTimer = setTimeout(
        () => this.#timedOut(streamTimeout, ErrorMessage.streamTimeout(streamTimeout)),
        streamTimeout,
      );
      unref(this.#totalTimer);
    }
    if (handlerTimeout !== false) this.#watchIdle(handlerTimeout, handlerTimeout);
    const frames = new ChunkFrames(ctx.name, ctx.id);
    try {
      while (!ctx.ended) {
        if (this.#sinceYield >= streamHighWaterMark) await this.#room();
        if (ctx.ended) break;
        this.#pulledAt = Date.now();
        const next = await this.#iterator.next();
        this.#pulledAt = 0;
        if (ctx.ended) break;
        if (next.done) {
          answerCompleted(session, ctx, next.value);
          break;
        }
        let text: string;
        try {
          text = frames.frame(next.value);
        } catch (error) {
          answerFailure(session, ctx, "action", error);
          break;
        }
        session.answer(text);
        telemetry.chunkSent(ctx.name);
        this.#sinceYield += text.length;
      }
    } catch (error) {
      answerFailure(session, ctx, "action", error);
    } finally {
      this.#finish();
    }
  }

  /** Checks, `after` ms from now, that the chunk waited for is not `timeout` ms late. */
  #watchIdle(timeout: number, after: number): void {
    this.#idleTimer = setTimeout(() => {
      if (this.#finished) return;
      const waited = this.#pulledAt === 0 ? 0 : Date.now() - this.#pulledAt;
      if (waited >= timeout) this.#timedOut(timeout, ErrorMessage.streamIdle(timeout));
      else this.#watchIdle(timeout, timeout - waited);
    }, after);
    unref(this.#idleTimer);
  }

  /**
   * Lets the runtime run (and write what this turn wrote), then waits until the send buffer
   * is under the high-water mark. Where the runtime cannot tell how much is buffered (a
   * Durable Object), it only lets the runtime write, once per high-water mark written.
   */
  async #room(): Promise<void> {
    const session = this.#session;
    const high = session.host.limits.streamHighWaterMark;
    this.#sinceYield = 0;
    await this.#pause(0);
    while (!this.#ctx.ended && (session.bufferedAmount ?? 0) > high) {
      await this.#pause(ROOM_POLL_MS);
    }
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  #stop(why: Cancellation): void {
    stopped(this.#session, this.#ctx, why);
    this.#finish();
  }

  #timedOut(timeout: number, message: string): void {
    timedOut(this.#session, this.#ctx, "action", timeout, message);
    this.#finish();
  }

  /**
   * Ends the stream, once: its timers and its place among the connection's streams go, and
   * the iterator's `return()` is called (a generator's `finally` runs, once the await it is
   * in settles: a stream stuck in one does not hold its place meanwhile).
   */
  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#totalTimer !== undefined) clearTimeout(this.#totalTimer);
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#untrack?.();
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
    returnQuietly(this.#session, this.#ctx, this.#iterator);
    this.#session.running.streamEnded();
    this.#session.host.telemetry.stream(this.#ctx.name, -1);
  }
}

function unref(timer: ReturnType<typeof setTimeout>): void {
  (timer as { unref?: () => void }).unref?.();
}

/** How often a stream looks again at a full send buffer, in ms. */
const ROOM_POLL_MS = 5;

/** A stream that will not be served: its iterator is told, so that a generator may clean up. */
function closeQuietly(
  session: StreamingConnection,
  ctx: FrameContext,
  source: AsyncIterable<unknown>,
): void {
  let iterator: AsyncIterator<unknown>;
  try {
    iterator = source[Symbol.asyncIterator]();
  } catch {
    return;
  }
  returnQuietly(session, ctx, iterator);
}

function returnQuietly(
  session: StreamingConnection,
  ctx: FrameContext,
  iterator: AsyncIterator<unknown>,
): void {
  try {
    const returned = iterator.return?.();
    if (returned) {
      Promise.resolve(returned).catch((error: unknown) =>
        session.host.reportError(error, {
          connection: session,
          channel: ctx.name,
          phase: "action",
        }),
      );
    }
  } catch (error) {
    session.host.reportError(error, { connection: session, channel: ctx.name, phase: "action" });
  }
}
