// The crossws subjects' hooks, shared by Node and Bun: the same JSON protocol as the other
// subjects, written the way crossws's docs show (hooks, `peer.subscribe`, the adapter's
// publish).
import { defineHooks } from "crossws";

/** The hooks; `publish` is the adapter's (`ws.publish`), which the hooks are made before. */
export function benchHooks(publish: (topic: string, text: string) => void) {
  return defineHooks({
    message(peer, message) {
      const frame = message.json<{
        type: string;
        channel: string;
        data: { a: number; b: number; count: number };
        id: number;
      }>();
      if (frame.type === "action" && frame.channel === "add_numbers") {
        peer.send(
          JSON.stringify({
            type: "action",
            channel: "add_numbers",
            status: "completed",
            data: frame.data.a + frame.data.b,
            id: frame.id,
          }),
        );
      } else if (frame.type === "subscribe") {
        peer.subscribe("fanout");
        peer.send(JSON.stringify({ type: "subscribed", channel: "fanout", id: frame.id }));
      } else if (frame.type === "action" && frame.channel === "broadcast") {
        for (let seq = 0; seq < frame.data.count; seq++) {
          publish("fanout", JSON.stringify({ type: "data", channel: "fanout", data: { seq } }));
        }
        peer.send(
          JSON.stringify({
            type: "action",
            channel: "broadcast",
            status: "completed",
            id: frame.id,
          }),
        );
      }
    },
  });
}
