import { InvalidInput } from "../declare/pipeline.ts";
import { HandlerTimeoutError, RequestCancelledError } from "../errors.ts";
import {
  completedFrame,
  errorCodeOf,
  errorText,
  internalErrorText,
  publicErrorText,
} from "../protocol/encode.ts";
import { ErrorCode, ErrorMessage } from "../protocol/protocol.ts";
import type { FrameContext } from "./handler-context.ts";
import type { Cancellation, RunningRequests } from "./running-requests.ts";
import type { AnsweringConnection } from "./served-connection.ts";

/** What a frame being served is: an action call, or a subscribe. */
export type FramePhase = "action" | "subscribe";

/**
 * Sends an action's answer, once; a result that cannot be serialized is answered as an
 * internal error instead.
 */
export function answerCompleted(
  session: AnsweringConnection,
  ctx: FrameContext,
  result: unknown,
): void {
  if (ctx.ended) return;
  let text: string;
  try {
    text = completedFrame(ctx.name, result, ctx.id);
  } catch (error) {
    answerFailure(session, ctx, "action", error);
    return;
  }
  ctx.ended = true;
  ctx.trace?.end();
  session.answer(text);
}

/** Answers a frame whose handling failed, once; never throws, whatever `error` is. */
export function answerFailure(
  session: AnsweringConnection,
  ctx: FrameContext,
  phase: FramePhase,
  error: unknown,
): void {
  if (ctx.ended) return;
  ctx.ended = true;
  const text = failureText(session, ctx, phase, error);
  ctx.trace?.end(errorCodeOf(text) ?? ErrorCode.INTERNAL_ERROR, error);
  session.answer(text);
}

/**
 * The answer to a failure: INVALID_PARAMS for input that failed its schema, a public
 * error's own code and message, else INTERNAL_ERROR with the real error reported to the
 * app (never to the client).
 */
function failureText(
  session: AnsweringConnection,
  ctx: FrameContext,
  phase: FramePhase,
  error: unknown,
): string {
  const { name, id } = ctx;
  if (isInvalidInput(error)) {
    const message =
      phase === "action"
        ? ErrorMessage.invalidActionParams(name)
        : ErrorMessage.invalidChannelParams(name);
    return errorText(ErrorCode.INVALID_PARAMS, message, id, name, error.issues);
  }
  const text = publicErrorText(error, id, name);
  if (text !== undefined) return text;
  // A handler stopped by the connection's own abort signal is not a fault to report.
  if (!(session.closed && isAbortError(error))) {
    session.host.reportError(error, { connection: session, channel: name, phase });
  }
  return internalErrorText(id, name);
}

/**
 * Waits for a frame's handling to settle, at most the app's `handlerTimeout`: then the
 * client gets `HANDLER_TIMEOUT`, the handler's signal is aborted and its place freed. With
 * `running`, a frame with an id may be cancelled meanwhile (`CANCELLED`, its place freed
 * too). The value goes to `answer` (an action's result); a subscribe answers itself.
 * Answers the frame exactly once; never rejects.
 */
export function whenSettled(
  session: AnsweringConnection,
  ctx: FrameContext,
  phase: FramePhase,
  pending: PromiseLike<unknown>,
  answer?: (value: unknown) => void,
  running?: RunningRequests,
): Promise<void> {
  return new Promise<void>((done) => {
    const timeout = session.host.limits.handlerTimeout;
    let untrack: (() => void) | undefined;
    const finish = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      untrack?.();
      done();
    };
    const timer =
      timeout === false
        ? undefined
        : setTimeout(() => {
            timedOut(session, ctx, phase, timeout, ErrorMessage.handlerTimeout(timeout));
            finish();
          }, timeout);
    (timer as { unref?: () => void } | undefined)?.unref?.();
    if (running && ctx.id !== undefined) {
      untrack = running.track(ctx.name, ctx.id, (why) => {
        stopped(session, ctx, why);
        finish();
      });
    }
    Promise.resolve(pending).then(
      (value) => {
        finish();
        answer?.(value);
      },
      (error: unknown) => {
        finish();
        answerFailure(session, ctx, phase, error);
      },
    );
  });
}

/**
 * A frame ran past `timeout` ms: its handler's signal aborts with a
 * {@link HandlerTimeoutError}, the app's error hook hears it, the client gets
 * `HANDLER_TIMEOUT` with `message`.
 */
export function timedOut(
  session: AnsweringConnection,
  ctx: FrameContext,
  phase: FramePhase,
  timeout: number,
  message: string,
): void {
  if (ctx.ended) return;
  const error = new HandlerTimeoutError(ctx.name, timeout);
  ctx.abandon(error);
  ctx.trace?.end(ErrorCode.HANDLER_TIMEOUT, error);
  session.host.reportError(error, { connection: session, channel: ctx.name, phase });
  session.answer(errorText(ErrorCode.HANDLER_TIMEOUT, message, ctx.id, ctx.name));
}

/**
 * A running request stopped before its end: cancelled by the client (its signal aborts
 * with a {@link RequestCancelledError}, the client gets `CANCELLED`), or its connection
 * closed (the signal aborted with the connection's; nobody is left to answer).
 */
export function stopped(session: AnsweringConnection, ctx: FrameContext, why: Cancellation): void {
  if (ctx.ended) return;
  if (why === "closed") {
    ctx.abandon(new DOMException("The connection closed.", "AbortError"));
    ctx.trace?.end();
    return;
  }
  const error = new RequestCancelledError(ctx.name);
  ctx.abandon(error);
  ctx.trace?.end(ErrorCode.CANCELLED, error);
  session.host.telemetry.cancelled(ctx.name);
  session.answer(errorText(ErrorCode.CANCELLED, ErrorMessage.cancelled, ctx.id, ctx.name));
}

// Both checks read what a handler threw, which may be a Proxy whose traps throw.
function isInvalidInput(error: unknown): error is InvalidInput {
  try {
    return error instanceof InvalidInput;
  } catch {
    return false;
  }
}

function isAbortError(error: unknown): boolean {
  try {
    return error instanceof Error && error.name === "AbortError";
  } catch {
    return false;
  }
}
