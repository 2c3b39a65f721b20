import { errorText } from "../protocol/encode.ts";
import { checkFrame, parseFrame } from "../protocol/parse.ts";
import {
  type ActionFrame,
  type CancelFrame,
  ErrorCode,
  ErrorMessage,
  PING_FRAME,
  PONG_FRAME,
} from "../protocol/protocol.ts";
import { isThenable } from "../thenable.ts";
import { answerResult } from "./action-stream.ts";
import { answerFailure, whenSettled } from "./answers.ts";
import { HandlerContext } from "./handler-context.ts";
import { DecodedFrame, type QueuedFrame, Refusals } from "./intake.ts";
import { serveRefresh } from "./refresh.ts";
import type { ServedConnection } from "./served-connection.ts";
import { serveSubscribe, serveUnsubscribe } from "./subscriptions.ts";

/**
 * Serves one frame of a connection, in its turn: parses it (protocol.md's checks, in
 * order), then runs the action, the subscribe or the unsubscribe it asks for. Returns a
 * promise only when it has to wait; the promise never rejects.
 */
export function serveFrame(
  session: ServedConnection,
  frame: QueuedFrame,
): Promise<void> | undefined {
  const { onRefresh } = session.host;
  if (frame instanceof DecodedFrame) {
    return serveParsed(
      session,
      checkFrame(frame.value, session.host.limits.maxNameLength, onRefresh !== undefined),
    );
  }
  if (typeof frame !== "string") {
    if (frame instanceof Refusals) {
      for (let i = 0; i < frame.count; i++) session.answer(frame.text);
    } else session.answer(JSON.stringify(frame));
    return undefined;
  }
  if (frame === PING_FRAME) {
    session.answer(PONG_FRAME);
    return undefined;
  }
  return serveParsed(
    session,
    parseFrame(frame, session.host.limits.maxNameLength, onRefresh !== undefined),
  );
}

/** Serves a frame once parsed (or the error frame that answers it). */
function serveParsed(
  session: ServedConnection,
  parsed: ReturnType<typeof parseFrame>,
): Promise<void> | undefined {
  const { onRefresh } = session.host;
  switch (parsed.type) {
    case "error":
      session.answer(JSON.stringify(parsed));
      return undefined;
    case "ping":
      session.answer(PONG_FRAME);
      return undefined;
    case "action":
      return serveAction(session, parsed);
    case "subscribe":
      return serveSubscribe(session, parsed);
    case "unsubscribe":
      serveUnsubscribe(session, parsed);
      return undefined;
    case "cancel":
      serveCancel(session, parsed);
      return undefined;
    case "refresh":
      return onRefresh ? serveRefresh(session, parsed, onRefresh) : undefined;
  }
}

/**
 * Serves an action through its pipeline. Synchronous as long as the pipeline is (a sync
 * schema, a handler that returns a value): no promise, no microtask, the answer written
 * in the same turn. It returns a promise only when it has to wait.
 */
function serveAction(session: ServedConnection, frame: ActionFrame): Promise<void> | undefined {
  const { channel: name, id } = frame;
  const action = session.host.findAction(name);
  if (!action) {
    session.answer(errorText(ErrorCode.NOT_FOUND, ErrorMessage.actionNotFound(name), id, name));
    return undefined;
  }
  const ctx = new HandlerContext(session, id, action.channels, name);
  const { telemetry } = session.host;
  if (telemetry.recording) ctx.trace = telemetry.startFrame("action", name, name, session);
  let result: unknown;
  try {
    result = ctx.trace
      ? telemetry.within(ctx.trace, () => action.pipeline.run(frame.data, ctx))
      : action.pipeline.run(frame.data, ctx);
    if (!isThenable(result)) {
      answerResult(session, ctx, result);
      return undefined;
    }
  } catch (error) {
    answerFailure(session, ctx, "action", error);
    return undefined;
  }
  return whenSettled(
    session,
    ctx,
    "action",
    result,
    (value) => answerResult(session, ctx, value),
    session.running,
  );
}

/**
 * Cancels the running request the frame names (it answers `CANCELLED` itself); a request
 * that is not running, unknown or finished, is left alone and nothing is sent.
 */
export function serveCancel(session: ServedConnection, frame: CancelFrame): void {
  session.running.cancel(frame.channel, frame.id);
}
