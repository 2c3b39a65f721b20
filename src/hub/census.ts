// Counting a channel's subscribers on every instance over a message broker: one instance
// asks on a topic all of them hear, each answers with its own count on the asker's topic,
// and the asker adds up the answers. A disconnect travels the same way: each instance
// answers with how many connections it closed.
import { type DisconnectTarget, isReason, isSendableCode, targetFrom } from "./disconnect.ts";

/** The topic every instance hears counting requests on (no declared channel starts so). */
export const CENSUS_TOPIC = "//census";

/** How long a count waits for answers, at most: instances that have not answered by then are not counted. */
export const CENSUS_TIMEOUT_MS = 1000;

/** When the broker cannot say how many instances there are: the count ends this long after the last answer. */
export const CENSUS_QUIET_MS = 100;

/** What a census needs of its relay: publishing to a topic, and how many hear one. */
export interface CensusLink {
  publish(topic: string, text: string): Promise<void>;
  /** How many instances (this one included) hear `topic`, where the broker can tell (Redis). */
  listeners?(topic: string): Promise<number>;
}

/** What an instance answers the others with: its own count, or how many it closed. */
export interface CensusAnswers {
  count(channel: string): number;
  disconnect(target: DisconnectTarget, code: number, reason: string): number;
}

/** One instance's side of counting: asking the others, and answering them. */
export class Census {
  /** The topic this instance hears answers on. */
  readonly replyTopic = `${CENSUS_TOPIC}/${crypto.randomUUID()}`;
  readonly #link: CensusLink;
  readonly #pending = new Map<number, (count: number) => void>();
  #lastId = 0;

  constructor(link: CensusLink) {
    this.#link = link;
  }

  /** The topics this instance must hear. */
  get topics(): string[] {
    return [CENSUS_TOPIC, this.replyTopic];
  }

  /**
   * How many subscribers `channel` has on the other instances: the sum of their answers,
   * once every instance the broker knows of answered (or, where it cannot tell, once none
   * answered for {@link CENSUS_QUIET_MS}), and by {@link CENSUS_TIMEOUT_MS} at most.
   */
  count(channel: string): Promise<number> {
    return this.#ask({ channel });
  }

  /**
   * Asks every other instance to close the connections `target` names; the sum of how
   * many each closed, gathered as {@link count} gathers its answers.
   */
  disconnect(target: DisconnectTarget, code: number, reason: string): Promise<number> {
    return this.#ask({ disconnect: target, code, reason });
  }

  async #ask(question: Record<string, unknown>): Promise<number> {
    const listeners = this.#link.listeners ? await this.#link.listeners(CENSUS_TOPIC) : undefined;
    const expected = listeners === undefined ? undefined : listeners - 1;
    if (expected !== undefined && expected <= 0) return 0;
    const id = ++this.#lastId;
    return new Promise<number>((resolve) => {
      let total = 0;
      let answers = 0;
      let quiet: ReturnType<typeof setTimeout> | undefined;
      const finish = () => {
        clearTimeout(deadline);
        if (quiet !== undefined) clearTimeout(quiet);
        this.#pending.delete(id);
        resolve(total);
      };
      const deadline = setTimeout(finish, CENSUS_TIMEOUT_MS);
      this.#pending.set(id, (count) => {
        total += count;
        answers++;
        if (expected !== undefined) {
          if (answers >= expected) finish();
          return;
        }
        if (quiet !== undefined) clearTimeout(quiet);
        quiet = setTimeout(finish, CENSUS_QUIET_MS);
      });
      const request = JSON.stringify({ id, ...question, reply: this.replyTopic });
      this.#link.publish(CENSUS_TOPIC, request).catch(finish);
    });
  }

  /**
   * A message on one of the census topics: a request, answered with `countHere` of its
   * channel, or an answer to one of ours. Anything else is dropped.
   */
  receive(topic: string, text: string, answers: CensusAnswers): void {
    let message: {
      id?: unknown;
      channel?: unknown;
      reply?: unknown;
      count?: unknown;
      disconnect?: unknown;
      code?: unknown;
      reason?: unknown;
    };
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof message !== "object" || message === null || typeof message.id !== "number") return;
    if (topic === CENSUS_TOPIC) {
      if (typeof message.reply !== "string" || !message.reply.startsWith(`${CENSUS_TOPIC}/`)) {
        return;
      }
      let count: number;
      if (typeof message.channel === "string") count = answers.count(message.channel);
      else {
        const target = targetFrom(message.disconnect);
        const { code, reason } = message;
        if (!target || !isSendableCode(code) || !isReason(reason)) return;
        count = answers.disconnect(target, code, reason);
      }
      const answer = JSON.stringify({ id: message.id, count });
      this.#link.publish(message.reply, answer).catch(() => {});
      return;
    }
    if (topic === this.replyTopic && typeof message.count === "number") {
      this.#pending.get(message.id)?.(message.count);
    }
  }

  /** Whether `topic` is one of the census's. */
  static owns(topic: string): boolean {
    return topic.startsWith(CENSUS_TOPIC);
  }
}
