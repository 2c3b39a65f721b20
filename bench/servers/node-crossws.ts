// crossws on Node, the way its docs show: hooks, `peer.subscribe`, and publishing with the
// adapter's pub/sub; the same JSON protocol as the others.
import { createServer } from "node:http";
import crossws from "crossws/adapters/node";
import { benchHooks } from "./crossws-hooks.ts";
import { memoryReport } from "./node-memory.ts";

const ws = crossws({ hooks: benchHooks((topic, text) => ws.publish(topic, text)) });
const server = createServer(memoryReport);
server.on("upgrade", (req, socket, head) => void ws.handleUpgrade(req, socket, head));
server.listen(Number(process.env.PORT), "127.0.0.1", () =>
  console.log(`listening at ws://127.0.0.1:${process.env.PORT}/`),
);
process.on("SIGINT", () => process.exit(0));
