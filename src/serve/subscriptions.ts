import { InvalidInput } from "../declare/pipeline.ts";
import type { HistoryOptions, HistoryStore, Recovery } from "../history/history.ts";
import { sincePosition } from "../history/stamp.ts";
import { MAX_PRESENCE_INFO_BYTES } from "../presence/presence-registry.ts";
import {
  dataFrame,
  errorText,
  membersFields,
  positionFields,
  replyFrame,
  subscribedFrame,
} from "../protocol/encode.ts";
import {
  ErrorCode,
  ErrorMessage,
  type SubscribeFrame,
  type UnsubscribeFrame,
  type WireIssue,
} from "../protocol/protocol.ts";
import { utf8Length } from "../protocol/utf8.ts";
import { isThenable } from "../thenable.ts";
import { whenSettled } from "./answers.ts";
import { SubscribeHandlerContext } from "./handler-context.ts";
import { JoiningSubscriber } from "./joining-subscriber.ts";
import { RecoveringSubscriber } from "./recovering-subscriber.ts";
import type { ChannelMatch, SubscribingConnection } from "./served-connection.ts";

/**
 * Serves a subscribe: the channel's pipeline (validate, dependencies, guard, handler,
 * data schema), then the hub, then `subscribed` and the initial data. Returns a promise
 * while it has to wait (it never rejects).
 */
export function serveSubscribe(
  session: SubscribingConnection,
  frame: SubscribeFrame,
): Promise<void> | undefined {
  const { channel: name, id } = frame;
  const { host } = session;
  const match = host.findChannel(name);
  if (!match) {
    session.answer(errorText(ErrorCode.NOT_FOUND, ErrorMessage.channelNotFound(name), id, name));
    return undefined;
  }
  const { maxSubscriptions } = host.limits;
  // A place held for a channel not yet subscribed to; subscribing again is always fine.
  const reserves = !session.holds(name);
  if (reserves && session.subscriptionCount + session.subscribesUnderWay >= maxSubscriptions) {
    const message = ErrorMessage.tooManySubscriptions(maxSubscriptions);
    host.telemetry.refused("subscriptions");
    session.answer(errorText(ErrorCode.TOO_MANY_SUBSCRIPTIONS, message, id, name));
    return undefined;
  }
  if (reserves) session.subscribesUnderWay++;
  const ctx = new SubscribeHandlerContext(session, id, match.declaration.channels, name);
  if (host.telemetry.recording) {
    ctx.trace = host.telemetry.startFrame("subscribe", name, match.template.name, session);
  }
  let steps: void | Promise<void>;
  try {
    steps = ctx.trace
      ? host.telemetry.within(ctx.trace, () => subscribeNow(session, match, frame, ctx))
      : subscribeNow(session, match, frame, ctx);
  } catch (error) {
    steps = Promise.reject(error);
  }
  // Served in this turn (a sync schema and handler, no history, no presence, no relay to
  // join): no promise, no timer, nothing left behind for the collector.
  if (steps === undefined) {
    if (reserves) session.subscribesUnderWay--;
    return undefined;
  }
  const done = whenSettled(session, ctx, "subscribe", steps);
  return reserves ? done.then(() => void session.subscribesUnderWay--) : done;
}

/**
 * The subscribe's steps, synchronous for as long as each is: the parameters, the
 * channel's pipeline, then (for a channel without history or presence) the hub and the
 * answer. `undefined` when the subscribe was answered; a promise of the rest otherwise.
 * Throws (or rejects) for the caller to answer.
 */
function subscribeNow(
  session: SubscribingConnection,
  match: ChannelMatch,
  frame: SubscribeFrame,
  ctx: SubscribeHandlerContext,
): void | Promise<void> {
  const { declaration } = match;
  const pipeline = declaration.subscribePipeline;
  let given: Record<string, unknown> | undefined;
  if (pipeline.hasSchema) {
    const params = subscribeParams(frame.data, declaration.subscribeKeys, match.nameParams);
    if (!params.ok) throw new InvalidInput(params.issues);
    given = params.value;
  }
  const result = pipeline.run(given, ctx);
  if (isThenable(result) || declaration.presence || session.hub.history?.of(ctx.name)) {
    return subscribeSteps(session, match, frame, ctx, given, result);
  }
  // Serialized before the client is added: data that cannot be sent refuses the subscribe.
  const initial = declaration.initialData ? dataFrame(ctx.name, result) : undefined;
  const name = ctx.name;
  if (!session.holds(name)) {
    // An adapter that keeps subscriptions (a Durable Object's attachment) may refuse one.
    session.keeper?.subscribing(session, name, given && withoutNameParams(given, match.nameParams));
    if (session.hub.relay && !session.hub.index.has(name)) {
      // The first subscriber here joins the relay, which takes a while: what is broadcast
      // meanwhile waits for `subscribed`.
      const standIn = new JoiningSubscriber(session, name, session.limits.maxBufferedBytes);
      const joined = session.hub.add(name, standIn);
      if (joined) return joined.then(() => addedAndAnswer(session, ctx, name, initial, standIn));
      return addedAndAnswer(session, ctx, name, initial, standIn);
    }
    session.hub.add(name, session);
  }
  addedAndAnswer(session, ctx, name, initial);
}

/**
 * The connection (or `standIn` for it) is in the hub: it holds the channel, and is told
 * `subscribed`, then gets what `standIn` held.
 */
function addedAndAnswer(
  session: SubscribingConnection,
  ctx: SubscribeHandlerContext,
  name: string,
  initial: string | undefined,
  standIn?: JoiningSubscriber,
): void {
  if (ctx.ended || session.closed) {
    // The client left, or the handler timed out, while the relay joined: nobody to add.
    forgetUnheld(session, name, standIn);
    return;
  }
  session.hold(name);
  ctx.ended = true;
  ctx.trace?.end();
  session.answer(replyFrame("subscribed", name, ctx.id));
  if (initial !== undefined) session.answer(initial);
  standIn?.handOver();
}

/** Takes the connection (or its stand-in) back out of a channel it was added to but does not hold. */
function forgetUnheld(
  session: SubscribingConnection,
  name: string,
  standIn?: JoiningSubscriber,
): void {
  if (session.holds(name)) return;
  session.hub.remove(name, standIn ?? session);
  session.keeper?.unsubscribed(session, name);
}

async function subscribeSteps(
  session: SubscribingConnection,
  match: ChannelMatch,
  frame: SubscribeFrame,
  ctx: SubscribeHandlerContext,
  given: Record<string, unknown> | undefined,
  running: unknown,
): Promise<void> {
  const { declaration } = match;
  const result = await running;
  // Serialized before the client is added: data that cannot be sent refuses the subscribe.
  const initial = declaration.initialData ? dataFrame(ctx.name, result) : undefined;
  // So is what the connection shows to the others, on a channel with presence, and as whom.
  const info = declaration.presence ? await presenceInfo(declaration.presence, ctx) : undefined;
  if (info !== undefined) session.presenceMember(ctx.name);
  // The client may have left, or the handler timed out, while it ran: nobody to add.
  if (ctx.ended || session.closed) return;
  const name = ctx.name;
  const history = session.hub.history?.of(name);
  if (history) {
    return subscribeWithHistory(session, ctx, frame, match, given, initial, info, history);
  }
  let standIn: JoiningSubscriber | undefined;
  if (!session.holds(name)) {
    // An adapter that keeps subscriptions (a Durable Object's attachment) may refuse one.
    session.keeper?.subscribing(session, name, given && withoutNameParams(given, match.nameParams));
    // What is broadcast while the relay joins and presence enters waits for `subscribed`.
    standIn = new JoiningSubscriber(session, name, session.limits.maxBufferedBytes);
    await session.hub.add(name, standIn);
    if (ctx.ended || session.closed) {
      forgetUnheld(session, name, standIn);
      return;
    }
    session.hold(name);
    if (info !== undefined) await session.enterPresence(name, info);
  }
  const members = await presenceFields(session, name, frame, info);
  if (ctx.ended || session.closed) {
    standIn?.settle();
    return;
  }
  ctx.ended = true;
  ctx.trace?.end();
  session.answer(
    members ? subscribedFrame(name, ctx.id, members) : replyFrame("subscribed", name, ctx.id),
  );
  if (initial !== undefined) session.answer(initial);
  standIn?.settle();
}

/** What a connection shows to the others, as JSON: at most {@link MAX_PRESENCE_INFO_BYTES}. */
async function presenceInfo(
  presence: (ctx: never) => unknown,
  ctx: SubscribeHandlerContext,
): Promise<string> {
  const info = JSON.stringify(await presence(ctx as never)) ?? "null";
  if (utf8Length(info, MAX_PRESENCE_INFO_BYTES) > MAX_PRESENCE_INFO_BYTES) {
    throw new Error(
      `Channel '${ctx.name}': presence info is over ${MAX_PRESENCE_INFO_BYTES} bytes as JSON.`,
    );
  }
  return info;
}

/**
 * For a client that asked for presence (`"presence": true`) on a channel with it: it hears
 * joins and leaves from now on, and `subscribed` lists the members (`undefined` otherwise).
 */
async function presenceFields(
  session: SubscribingConnection,
  name: string,
  frame: SubscribeFrame,
  info: string | undefined,
): Promise<string | undefined> {
  if (info === undefined || frame.presence !== true) return undefined;
  session.listenToPresence(name);
  session.keeper?.listening?.(session, name);
  const { json, count } = await session.hub.presence.listing(name);
  return membersFields(json, count);
}

/**
 * A subscribe to a channel with history: the connection is added through a stand-in that
 * holds broadcasts while the stream is read, then gets `subscribed` with the stream's
 * position, what it missed since the position it gave (if it gave one and the history
 * covers it), the initial data unless it recovered, and what was held after the read.
 */
async function subscribeWithHistory(
  session: SubscribingConnection,
  ctx: SubscribeHandlerContext,
  frame: SubscribeFrame,
  match: ChannelMatch,
  given: Record<string, unknown> | undefined,
  initial: string | undefined,
  info: string | undefined,
  history: { options: HistoryOptions; store: HistoryStore },
): Promise<void> {
  const name = ctx.name;
  const asked = frame.since !== undefined;
  const since = sincePosition(frame.since);
  const { maxBufferedBytes } = session.limits;
  let recovering: RecoveringSubscriber | undefined;
  if (!session.holds(name)) {
    session.keeper?.subscribing(session, name, given && withoutNameParams(given, match.nameParams));
    recovering = new RecoveringSubscriber(session, name, maxBufferedBytes);
    await session.hub.add(name, recovering);
  }
  let recovery: Recovery | undefined;
  if (!ctx.ended && !session.closed) {
    try {
      // Already subscribed, nothing was missed on this connection: only the position.
      const maxBytes = recovering ? Math.floor(maxBufferedBytes / 2) : 0;
      recovery = await session.hub.history?.recover(name, history, since, maxBytes);
    } catch (error) {
      // The store cannot be read: subscribed without a position (not recovered, then).
      session.host.reportError(error, { connection: session, channel: name, phase: "subscribe" });
    }
  }
  if (ctx.ended || session.closed) {
    if (recovering) {
      session.hub.remove(name, recovering);
      session.keeper?.unsubscribed(session, name);
    }
    return;
  }
  session.hold(name);
  if (recovering && info !== undefined) await session.enterPresence(name, info);
  const members = (await presenceFields(session, name, frame, info)) ?? "";
  ctx.ended = true;
  ctx.trace?.end();
  if (!recovery) {
    session.answer(subscribedFrame(name, ctx.id, members));
    if (initial !== undefined) session.answer(initial);
    recovering?.handOver(undefined);
    return;
  }
  const { position } = recovery;
  const recovered = asked ? since !== undefined && recovery.recovered === true : undefined;
  const fields = positionFields(position.offset, position.epoch, recovered) + members;
  session.answer(subscribedFrame(name, ctx.id, fields));
  if (recovered) for (const missed of recovery.frames) session.answer(missed);
  else if (initial !== undefined) session.answer(initial);
  recovering?.handOver(position, history.store.shared);
}

/**
 * Counts a restored connection (a Durable Object's, after a wake) back into the presence
 * of the channels it held, without telling anyone (they heard its join before the
 * object slept), and back among the listeners of those it listened to.
 */
export function restorePresence(
  session: SubscribingConnection,
  names: Iterable<string>,
  listening: Iterable<string>,
): void {
  for (const name of names) {
    const match = session.host.findChannel(name);
    const presence = match?.declaration.presence;
    if (!match || !presence) continue;
    const ctx = new SubscribeHandlerContext(session, undefined, match.declaration.channels, name);
    presenceInfo(presence, ctx).then(
      (info) => {
        if (!session.closed && session.holds(name)) {
          session.enterPresence(name, info, true);
        }
      },
      (error: unknown) =>
        session.host.reportError(error, { connection: session, channel: name, phase: "subscribe" }),
    );
  }
  for (const name of listening) {
    if (session.holds(name)) session.listenToPresence(name);
  }
}

/** Serves an unsubscribe: always confirmed, also for a channel not held or unknown. */
export function serveUnsubscribe(session: SubscribingConnection, frame: UnsubscribeFrame): void {
  const { channel: name, id } = frame;
  if (session.release(name)) {
    session.hub.remove(name, session);
    session.leavePresence(name);
    session.keeper?.unsubscribed(session, name);
  }
  session.answer(replyFrame("unsubscribed", name, id));
}

/** The parameters the client itself sent, without those taken from the channel's name. */
function withoutNameParams(
  value: Record<string, unknown>,
  nameParams: Record<string, string>,
): Record<string, unknown> | undefined {
  let kept: Record<string, unknown> | undefined;
  for (const key of Object.keys(value)) {
    if (Object.hasOwn(nameParams, key)) continue;
    kept ??= {};
    kept[key] = value[key];
  }
  return kept;
}

/**
 * The parameters a subscribing client may set: only the marked keys of `data`, then the
 * parameters in the channel's name, which win.
 */
function subscribeParams(
  data: unknown,
  keys: readonly string[],
  nameParams: Record<string, string>,
): { ok: true; value: Record<string, unknown> } | { ok: false; issues: WireIssue[] } {
  if (data !== undefined && (data === null || typeof data !== "object" || Array.isArray(data))) {
    return {
      ok: false,
      issues: [{ message: "Subscribe parameters must be an object.", path: [] }],
    };
  }
  const value: Record<string, unknown> = {};
  const given = data as Record<string, unknown> | undefined;
  if (given) for (const key of keys) if (Object.hasOwn(given, key)) value[key] = given[key];
  return { ok: true, value: Object.assign(value, nameParams) };
}
