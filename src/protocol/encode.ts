import { SocketAPIError } from "../errors.ts";
import { stringifyData } from "./bytes.ts";
import { errorFrame } from "./parse.ts";
import { ErrorCode, ErrorMessage, type RequestId, type WireIssue } from "./protocol.ts";

// The frames a server sends most, written as text directly: one `JSON.stringify` of the
// payload, never of an envelope object. Each function here throws only when the payload
// cannot be serialized (a BigInt, a cycle, a `toJSON` that throws).

/** `{"type":"action","channel":NAME,"status":"completed"` per action name, made once. */
const completedPrefixes = new Map<string, string>();

/** The start of a frame for `name`, made once (names come from declarations, not clients:
 * each map is bounded by the app). */
function prefixOf(prefixes: Map<string, string>, name: string, make: () => string): string {
  let prefix = prefixes.get(name);
  if (prefix === undefined) {
    prefix = make();
    prefixes.set(name, prefix);
  }
  return prefix;
}

/** `,"data":…` unless `value` is `undefined`, then `,"id":…` when there is an id, and `}`. */
function dataAndId(value: unknown, id: RequestId | undefined): string {
  const data = value === undefined ? undefined : stringifyData(value);
  return `${data === undefined ? "" : `,"data":${data}`}${
    id === undefined ? "" : `,"id":${encodeId(id)}`
  }}`;
}

function encodeId(id: RequestId): string {
  return typeof id === "number" ? String(id) : JSON.stringify(id);
}

/** An action's answer; `data` is left out only when the handler returned `undefined`. */
export function completedFrame(name: string, result: unknown, id: RequestId | undefined): string {
  const prefix = prefixOf(
    completedPrefixes,
    name,
    () => `{"type":"action","channel":${JSON.stringify(name)},"status":"completed"`,
  );
  return prefix + dataAndId(result, id);
}

/**
 * The `chunk` frames of one stream: what each of them repeats (the action's name, the
 * request's id) is written once, so that a chunk costs one `JSON.stringify` and one
 * concatenation; `data` is left out for an `undefined` chunk.
 */
export class ChunkFrames {
  readonly #start: string;
  readonly #end: string;
  readonly #empty: string;

  constructor(name: string, id: RequestId | undefined) {
    const channel = `{"type":"chunk","channel":${JSON.stringify(name)}`;
    this.#end = id === undefined ? "}" : `,"id":${encodeId(id)}}`;
    this.#start = `${channel},"data":`;
    this.#empty = channel + this.#end;
  }

  /** The frame of `chunk`; throws when it cannot be serialized. */
  frame(chunk: unknown): string {
    const data = chunk === undefined ? undefined : stringifyData(chunk);
    return data === undefined ? this.#empty : this.#start + data + this.#end;
  }
}

/** `subscribed` or `unsubscribed` for a concrete channel name. */
export function replyFrame(
  type: "subscribed" | "unsubscribed",
  name: string,
  id: RequestId | undefined,
): string {
  return `{"type":"${type}","channel":${JSON.stringify(name)}${
    id === undefined ? "" : `,"id":${encodeId(id)}`
  }}`;
}

/**
 * `subscribed` with more to say (`fields`, written by {@link positionFields} and
 * {@link membersFields}, each starting with a comma); the id last.
 */
export function subscribedFrame(name: string, id: RequestId | undefined, fields: string): string {
  return `{"type":"subscribed","channel":${JSON.stringify(name)}${fields}${
    id === undefined ? "" : `,"id":${encodeId(id)}`
  }}`;
}

/**
 * On a channel with history: where the stream is, and whether what the client missed
 * follows (`recovered`, only when it asked with `since`).
 */
export function positionFields(
  offset: number,
  epoch: string,
  recovered: boolean | undefined,
): string {
  return `,"offset":${offset},"epoch":${JSON.stringify(epoch)}${
    recovered === undefined ? "" : `,"recovered":${recovered}`
  }`;
}

/** On a channel with presence, for a client that asked: the members (`[...]`) and their count. */
export function membersFields(members: string, count: number): string {
  return `,"members":${members},"count":${count}`;
}

/**
 * A `data` frame, serialized once for every subscriber of `channel`. A handler that returns
 * nothing sends `null`, so that the frame always has its `data` key.
 */
export function dataFrame(channel: string, data: unknown): string {
  return `{"type":"data","channel":${JSON.stringify(channel)},"data":${stringifyData(data) ?? "null"}}`;
}

/** An error frame as text. */
export function errorText(
  code: string,
  message: string,
  id: RequestId | undefined,
  channel?: string,
  issues?: WireIssue[],
): string {
  const frame = errorFrame(code, message, id, channel);
  if (issues) frame.issues = issues;
  return JSON.stringify(frame);
}

/** `INTERNAL_ERROR`, the answer when nothing better can be said. Never throws. */
export function internalErrorText(id: RequestId | undefined, channel?: string): string {
  return errorText(ErrorCode.INTERNAL_ERROR, ErrorMessage.internal, id, channel);
}

/**
 * The error frame for a {@link SocketAPIError} a handler threw: its code, message and
 * issues. `undefined` for anything else, and for a public error that cannot be read or
 * serialized (a getter that throws, a BigInt in its issues): the caller then answers
 * `INTERNAL_ERROR`. Never throws, whatever `error` is (a Proxy whose traps throw included).
 */
export function publicErrorText(
  error: unknown,
  id: RequestId | undefined,
  channel: string | undefined,
): string | undefined {
  try {
    if (!(error instanceof SocketAPIError)) return undefined;
    const { code, message, issues } = error;
    if (typeof code !== "string" || typeof message !== "string") return undefined;
    return errorText(code, message, id, channel, issues);
  } catch {
    return undefined;
  }
}

/** What an error frame as {@link errorText} writes it starts with; its code follows. */
const ERROR_PREFIX = '{"type":"error","code":"';

/** The code of an encoded error frame; `undefined` for any other frame. */
export function errorCodeOf(text: string): string | undefined {
  if (!text.startsWith(ERROR_PREFIX)) return undefined;
  return text.slice(ERROR_PREFIX.length, text.indexOf('"', ERROR_PREFIX.length));
}
