import { parseJson } from "./bytes.ts";
import {
  type ClientFrame,
  ErrorCode,
  type ErrorFrame,
  ErrorMessage,
  MAX_REQUEST_ID_LENGTH,
  MAX_TOKEN_BYTES,
  type RefreshFrame,
  type RequestId,
} from "./protocol.ts";
import { isWellFormed, utf8Length } from "./utf8.ts";

/** Whether `id` is a request id a client may send: a short string or a finite number. */
export function isValidRequestId(id: unknown): id is RequestId {
  return (
    (typeof id === "string" && id.length <= MAX_REQUEST_ID_LENGTH) ||
    (typeof id === "number" && Number.isFinite(id))
  );
}

/** An error frame for `message`, with the id of the frame it answers when that id was valid. */
export function errorFrame(
  code: string,
  message: string,
  id: unknown,
  channel?: string,
): ErrorFrame {
  const frame: ErrorFrame = { type: "error", code, message };
  if (channel !== undefined) frame.channel = channel;
  if (isValidRequestId(id)) frame.id = id;
  return frame;
}

function isMissing(value: unknown): boolean {
  return value === undefined || value === null || value === "";
}

/**
 * Parses one untrusted text frame, running checks 3 to 11 of protocol.md's table in order.
 * Returns the frame when it is well formed, else the error frame that answers it; only the
 * type's spelling and the envelope are checked here, names and parameters come later.
 * A name longer than `maxNameLength` characters, or one that is not well-formed Unicode (a
 * lone surrogate), is refused here, before anything keeps it.
 */
export function parseFrame(
  text: string,
  maxNameLength = Infinity,
  refreshes = false,
): ClientFrame | ErrorFrame {
  let value: unknown;
  try {
    value = parseJson(text);
  } catch {
    return errorFrame(ErrorCode.INVALID_JSON, ErrorMessage.invalidJson, undefined);
  }
  return checkFrame(value, maxNameLength, refreshes);
}

/**
 * Checks one decoded frame (a binary codec's, or JSON's), running checks 4 to 11 of
 * protocol.md's table in order: what {@link parseFrame} does after parsing.
 */
export function checkFrame(
  value: unknown,
  maxNameLength = Infinity,
  refreshes = false,
): ClientFrame | ErrorFrame {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return errorFrame(ErrorCode.INVALID_MESSAGE, ErrorMessage.notAnObject, undefined);
  }
  const frame = value as Record<string, unknown>;
  const { type, channel, id } = frame;
  if (isMissing(type)) {
    return errorFrame(ErrorCode.INVALID_MESSAGE, ErrorMessage.typeRequired, id);
  }
  if (typeof type !== "string") {
    return errorFrame(ErrorCode.INVALID_MESSAGE, ErrorMessage.typeNotString, id);
  }
  if (type === "ping") return { type: "ping" };
  // Only an app with `onRefresh` takes refresh frames; to others it is the frame it always
  // was (without a channel: `Channel is required.`).
  if (type === "refresh" && refreshes) return parseRefresh(frame.token, id);
  if (isMissing(channel)) {
    return errorFrame(ErrorCode.INVALID_MESSAGE, ErrorMessage.channelRequired, id);
  }
  if (typeof channel !== "string") {
    return errorFrame(ErrorCode.INVALID_MESSAGE, ErrorMessage.channelNotString, id);
  }
  if (channel.length > maxNameLength) {
    return errorFrame(ErrorCode.INVALID_MESSAGE, ErrorMessage.nameTooLong(maxNameLength), id);
  }
  if (!isWellFormed(channel)) {
    return errorFrame(ErrorCode.INVALID_MESSAGE, ErrorMessage.nameNotUnicode, id);
  }
  if (id !== undefined && !isValidRequestId(id)) {
    return errorFrame(ErrorCode.INVALID_MESSAGE, ErrorMessage.invalidId, undefined);
  }
  if (type === "cancel") {
    if (id === undefined) {
      return errorFrame(ErrorCode.INVALID_MESSAGE, ErrorMessage.cancelNeedsId, undefined, channel);
    }
    return { type, channel, id } as ClientFrame;
  }
  if (type !== "action" && type !== "subscribe" && type !== "unsubscribe") {
    return errorFrame(ErrorCode.UNKNOWN_TYPE, ErrorMessage.unknownType(type), id);
  }
  return frame as unknown as ClientFrame;
}

/** A refresh frame: its token (a non-empty string of at most MAX_TOKEN_BYTES) and its id. */
function parseRefresh(token: unknown, id: unknown): ClientFrame | ErrorFrame {
  if (id !== undefined && !isValidRequestId(id)) {
    return errorFrame(ErrorCode.INVALID_MESSAGE, ErrorMessage.invalidId, undefined);
  }
  if (typeof token !== "string" || token === "") {
    return errorFrame(ErrorCode.INVALID_MESSAGE, ErrorMessage.refreshNeedsToken, id);
  }
  if (utf8Length(token, MAX_TOKEN_BYTES) > MAX_TOKEN_BYTES) {
    return errorFrame(ErrorCode.INVALID_MESSAGE, ErrorMessage.tokenTooLong(MAX_TOKEN_BYTES), id);
  }
  const refresh: RefreshFrame = { type: "refresh", token };
  if (id !== undefined) refresh.id = id as RequestId;
  return refresh;
}
