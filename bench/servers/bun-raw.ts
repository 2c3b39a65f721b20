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
    message(ws, raw) {
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
      }
    },
  },
});
console.log(`listening at ws://127.0.0.1:${server.port}/`);
