// What the AsyncAPI document says of a connection's credential: the `expiry` frame, the
// close code of an expired one (4001), and, for an app with `onRefresh`, the `refresh`
// frame and its answers.
import { CloseCode, ErrorCode, MAX_TOKEN_BYTES } from "../protocol/protocol.ts";
import { constant, errorMessage, type Json, message, REQUEST_ID, ref } from "./asyncapi-json.ts";

/** What a refresh may be answered with besides `refreshed`. */
const REFRESH_ERRORS = [
  ErrorCode.UNAUTHORIZED,
  ErrorCode.FORBIDDEN,
  ErrorCode.INVALID_MESSAGE,
  ErrorCode.RATE_LIMITED,
  ErrorCode.HANDLER_TIMEOUT,
  ErrorCode.INTERNAL_ERROR,
];

/** The sentence the connection channel's description gains: the close code of an expiry. */
export const EXPIRY_CLOSE = ` A connection whose credential expired (\`onConnect\` set \`credential.expiresAt\`) and that no refresh moved is closed with ${CloseCode.tokenExpired} \`Token expired\`.`;

/** Adds the credential's frames to the connection channel and its operations. */
export function describeCredentials(
  key: string,
  messages: Json,
  operations: Json,
  refreshes: boolean,
): void {
  messages.expiry = message(
    "expiry",
    "Sent first, to a client that offered the `socketapi` subprotocol, when its credential expires: in `expiresIn` ms.",
    { type: constant("expiry"), expiresIn: { type: "integer", minimum: 0 } },
    ["type", "expiresIn"],
  );
  operations[`${key}.expiry`] = {
    action: "send",
    channel: ref(`#/channels/${key}`),
    title: "expiry",
    summary: "When the connection's credential expires; refresh it before then.",
    messages: [ref(`#/channels/${key}/messages/expiry`)],
  };
  if (!refreshes) return;
  messages.refresh = message(
    "refresh",
    "A fresh credential for the open connection (checked by the app's `onRefresh`).",
    {
      type: constant("refresh"),
      token: { type: "string", minLength: 1, description: `At most ${MAX_TOKEN_BYTES} bytes.` },
      id: REQUEST_ID,
    },
    ["type", "token"],
  );
  messages.refreshed = message(
    "refreshed",
    "The refresh was taken: the credential now expires in `expiresIn` ms (left out: never).",
    { type: constant("refreshed"), expiresIn: { type: "integer", minimum: 0 }, id: REQUEST_ID },
    ["type"],
  );
  messages.refreshError = errorMessage("refresh error", { not: {} }, REFRESH_ERRORS);
  operations[`${key}.refresh`] = {
    action: "receive",
    channel: ref(`#/channels/${key}`),
    title: "refresh",
    messages: [ref(`#/channels/${key}/messages/refresh`)],
    reply: {
      channel: ref(`#/channels/${key}`),
      messages: [
        ref(`#/channels/${key}/messages/refreshed`),
        ref(`#/channels/${key}/messages/refreshError`),
      ],
    },
  };
}
