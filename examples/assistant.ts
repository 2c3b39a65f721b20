/**
 * An assistant-style action: the reply streams word by word, with a delay between words,
 * and stops as soon as the client cancels it (no real model: a fixed text).
 *
 *   npx socketapi examples/assistant.ts --port 8001
 *
 * From the typed client:
 *
 *   const reply = client.stream("ask", { question: "What is SocketAPI?" }, { signal });
 *   for await (const word of reply) output.append(word);
 */

import { RequestCancelledError, SocketAPI } from "socketapi";
import * as v from "valibot";

const ANSWER =
  "SocketAPI declares actions and channels like routes, validates them with valibot and " +
  "multiplexes them over one WebSocket, typed from the server to the client.";

/** Waits `ms`, or less when `signal` aborts (a cancel, a closed connection, a timeout). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

const app = new SocketAPI().action(
  "ask",
  {
    input: v.object({
      question: v.pipe(v.string(), v.maxLength(2000)),
      /** The delay between two words, in ms. */
      delay: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1000)), 80),
    }),
  },
  async function* ({ question, delay }, ctx) {
    const words = ANSWER.split(" ");
    let sent = 0;
    try {
      for (const word of words) {
        await pause(delay, ctx.signal);
        if (ctx.signal.aborted) break;
        yield sent === 0 ? word : ` ${word}`;
        sent++;
      }
      return { question, words: sent };
    } finally {
      if (ctx.signal.reason instanceof RequestCancelledError) {
        console.log(`"${question.slice(0, 40)}": cancelled after ${sent} of ${words.length} words`);
      }
    }
  },
);

export default app;
