// What presence adds to a channel in the AsyncAPI document (docs/presence.md): `presence`
// on subscribe, the members on `subscribed`, and the join and leave frames with their
// operation.
import { constant, type Json, message, ref } from "./asyncapi-json.ts";

/** Adds the fields of presence to a channel's subscribe and subscribed frames. */
export function describePresenceFields(subscribe: Json, subscribed: Json): void {
  subscribe.presence = {
    type: "boolean",
    description: "`true`: list the members in `subscribed`, then hear joins and leaves.",
  };
  subscribed.members = {
    type: "array",
    description: "With `presence: true`: the members, at most 1,000.",
    items: {
      type: "object",
      properties: { user: { type: "string" }, info: { description: "What `presence` returns." } },
      required: ["user", "info"],
    },
  };
  subscribed.count = {
    type: "integer",
    minimum: 0,
    description: "How many members there are.",
  };
}

/** The join and leave messages of channel `name`, and the operation that sends them. */
export function describePresenceFrames(
  name: string,
  key: string,
  nameSchema: Json,
  messages: Json,
  operations: Json,
): void {
  messages.join = message(
    `${name} join`,
    "A member joined (only to clients that asked for presence).",
    {
      type: constant("join"),
      channel: nameSchema,
      user: { type: "string" },
      info: { description: "What the channel's `presence` function returns for the member." },
    },
    ["type", "channel", "user", "info"],
  );
  messages.leave = message(
    `${name} leave`,
    "A member left: its last connection unsubscribed or closed.",
    {
      type: constant("leave"),
      channel: nameSchema,
      user: { type: "string" },
    },
    ["type", "channel", "user"],
  );
  operations[`${key}.presence`] = {
    action: "send",
    channel: ref(`#/channels/${key}`),
    title: `${name} presence`,
    summary: "Joins and leaves, to the subscribers that asked for presence.",
    messages: [ref(`#/channels/${key}/messages/join`), ref(`#/channels/${key}/messages/leave`)],
  };
}
