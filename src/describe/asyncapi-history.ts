// What history adds to a channel's frames in the AsyncAPI document (docs/recovery.md):
// `since` on subscribe, the stream's position on `subscribed` and on each broadcast.
import type { Json } from "./asyncapi-json.ts";

/** Adds the fields of history to a channel's subscribe, subscribed and data frames. */
export function describeHistoryFields(subscribe: Json, subscribed: Json, data: Json): void {
  subscribe.since = {
    type: "object",
    description: "Asks for every broadcast after this position (docs/recovery.md).",
    properties: { offset: { type: "integer", minimum: 0 }, epoch: { type: "string" } },
    required: ["offset", "epoch"],
  };
  subscribed.offset = { type: "integer", minimum: 0 };
  subscribed.epoch = { type: "string" };
  subscribed.recovered = {
    type: "boolean",
    description: "With `since`: whether the missed broadcasts follow.",
  };
  data.offset = { type: "integer", minimum: 1 };
  data.epoch = { type: "string" };
}
