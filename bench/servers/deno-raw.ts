// The limit on Deno: Deno.serve and Deno.upgradeWebSocket, frames parsed, work done,
// answers sent; broadcasts in a loop over the subscribers (Deno has no pub/sub of its own).
// Deno pings idle sockets by default, as SocketAPI asks it to (idleTimeout): measured here,
// a raw socket holds 2.9 KB of heap without (BENCH_IDLE_TIMEOUT=0) and 4.8 KB with.
import { memoryReport } from "./deno-memory.ts";

const subscribers = new Set<WebSocket>();
Deno.serve(
  {
    port: Number(Deno.env.get("PORT")),
    hostname: "127.0.0.1",
    onListen: ({ port }) => console.log(`listening at ws://127.0.0.1:${port}/`),
  },
  (request) => {
    if (request.headers.get("upgrade") !== "websocket") return memoryReport();
    const idle = Deno.env.get("BENCH_IDLE_TIMEOUT");
    const { socket, response } = Deno.upgradeWebSocket(
      request,
      idle === undefined ? {} : { idleTimeout: Number(idle) },
    );
    socket.onmessage = async (event) => {
      const frame = JSON.parse(event.data as string);
      if (frame.type === "action" && frame.channel === "add_numbers") {
        socket.send(
          `{"type":"action","channel":"add_numbers","status":"completed","data":${frame.data.a + frame.data.b},"id":${JSON.stringify(frame.id)}}`,
        );
      } else if (frame.type === "subscribe") {
        subscribers.add(socket);
        socket.send(`{"type":"subscribed","channel":"fanout","id":${JSON.stringify(frame.id)}}`);
      } else if (frame.type === "action" && frame.channel === "broadcast") {
        for (let seq = 0; seq < frame.data.count; seq++) {
          const text = `{"type":"data","channel":"fanout","data":{"seq":${seq}}}`;
          for (const subscriber of subscribers) subscriber.send(text);
          await null;
        }
        socket.send(
          `{"type":"action","channel":"broadcast","status":"completed","id":${JSON.stringify(frame.id)}}`,
        );
      } else if (frame.type === "action" && frame.channel === "stream") {
        // The same frames as a streaming answer, from the same async generator as
        // SocketAPI's (`values`), read with `for await`: a chunk per value, then completed.
        const id = JSON.stringify(frame.id);
        for await (const value of values(frame.data.count)) {
          socket.send(
            `{"type":"chunk","channel":"stream","data":${JSON.stringify(value)},"id":${id}}`,
          );
        }
        socket.send(`{"type":"action","channel":"stream","status":"completed","id":${id}}`);
      }
    };
    socket.onclose = () => subscribers.delete(socket);
    return response;
  },
);

/** The values a streaming answer sends: what the SocketAPI subject's `stream` action yields. */
async function* values(count: number) {
  for (let seq = 0; seq < count; seq++) yield { seq };
}
