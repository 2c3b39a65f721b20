/**
 * The seed example: SocketAPI 0.2's README app, in TypeScript.
 *
 *   npm start                          # ws://127.0.0.1:8000/
 *   npx socketapi examples/main.ts --port 8000 --watch
 */

import { SocketAPI } from "socketapi";
import * as v from "valibot";

const app = new SocketAPI()
  .action(
    "add_numbers",
    { input: v.object({ a: v.pipe(v.number(), v.integer()), b: v.pipe(v.number(), v.integer()) }) },
    ({ a, b }) => a + b,
  )
  .channel(
    "chat",
    { params: v.object({ message: v.optional(v.string(), "Welcome") }) },
    ({ message }) => ({ message }),
  )
  .action(
    "send_message",
    { input: v.object({ message: v.string() }) },
    async ({ message }, ctx) => {
      await ctx.channels.chat({ message });
    },
  );

export default app;
