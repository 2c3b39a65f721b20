/**
 * The React example's server: a chat room with history (the last 100 messages, kept for
 * ten minutes), presence (who is in the room, by name), and a streaming action (a summary
 * of the room, word by word). The page (App.tsx) is typed from it.
 *
 *   npm run start:react        # builds the page with Vite, serves both on http://127.0.0.1:8002/
 */
import { SocketAPI } from "socketapi";
import * as v from "valibot";

const Message = v.object({
  name: v.pipe(v.string(), v.minLength(1), v.maxLength(40)),
  text: v.pipe(v.string(), v.minLength(1), v.maxLength(500)),
});

const app = new SocketAPI({
  // Who you are: ?name= on the page's URL (a real app would read a session or a token).
  onConnect: (request) => {
    const name = new URL(request.url).searchParams.get("name")?.slice(0, 40) || "guest";
    return { name };
  },
  userId: (connection) => connection.state.name,
})
  .channel(
    "room",
    {
      params: v.object({ name: v.optional(v.string(), ""), text: v.optional(v.string(), "") }),
      history: { size: 100, ttl: 600_000 },
      presence: (ctx) => ({ name: ctx.connection.state.name }),
    },
    ({ name, text }) => ({ name, text, at: Date.now() }),
  )
  .action("send", { input: v.object({ text: Message.entries.text }) }, async ({ text }, ctx) => {
    await ctx.channels.room({ name: ctx.connection.state.name, text });
  })
  // The messages kept, oldest first: what a page that just loaded shows.
  .action("recent", async (_input, ctx) =>
    (await ctx.app.history("room", { last: 100 })).map(
      (kept) => kept.data as { name: string; text: string; at: number },
    ),
  )
  .action("summary", async function* (_input, ctx) {
    const recent = await ctx.app.history("room", { last: 100 });
    const people = new Set(recent.map((kept) => (kept.data as { name: string }).name));
    const words = `${recent.length} messages from ${people.size} people in this room.`.split(" ");
    for (const word of words) {
      if (ctx.signal.aborted) return;
      yield `${word} `;
      await new Promise((resolve) => setTimeout(resolve, 60));
    }
  });

export default app;
