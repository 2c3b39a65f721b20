// The limit on Bun: Bun.serve, frames parsed, work done, answers sent; broadcasts with the
// native `server.publish`.
const server = Bun.serve({
  port: Number(process.env.PORT),
  hostname: "127.0.0.1",
  fetch(request, server) {
    if (server.upgrade(request, { data: undefined })) return undefined;
    Bun.gc(true);
    return Response.json(process.memoryUsage());
  },
  websocket: {
    async message(ws, raw) {
      const frame = JSON.parse(raw as string);
      if (frame.type === "action" && frame.channel === "add_numbers") {
        ws.send(
          `{"type":"action","channel":"add_numbers","status":"completed","data":${frame.data.a + frame.data.b},"id":${JSON.stringify(frame.id)}}`,
        );
      } else if (frame.type === "subscribe") {
        ws.subscribe("fanout");
        ws.send(`{"type":"subscribed","channel":"fanout","id":${JSON.stringify(frame.id)}}`);
      } else if (frame.type === "action" && frame.channel === "broadcast") {
        for (let seq = 0; seq < frame.data.count; seq++) {
          server.publish("fanout", `{"type":"data","channel":"fanout","data":{"seq":${seq}}}`);
        }
        ws.send(
          `{"type":"action","channel":"broadcast","status":"completed","id":${JSON.stringify(frame.id)}}`,
        );
      } else if (frame.type === "action" && frame.channel === "stream") {
        // The same frames as a streaming answer, from the same async generator as
        // SocketAPI's (`values`), read with `for await`: a chunk per value, then completed.
        const id = JSON.stringify(frame.id);
        for await (const value of values(frame.data.count)) {
          ws.send(`{"type":"chunk","channel":"stream","data":${JSON.stringify(value)},"id":${id}}`);
        }
        ws.send(`{"type":"action","channel":"stream","status":"completed","id":${id}}`);
      }
    },
  },
});
console.log(`listening at ws://127.0.0.1:${server.port}/`);

/** The values a streaming answer sends: what the SocketAPI subject's `stream` action yields. */
async function* values(count: number) {
  for (let seq = 0; seq < count; seq++) yield { seq };
}
