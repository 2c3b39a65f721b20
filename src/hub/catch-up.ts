import type { StreamPosition } from "../history/history.ts";
import { positionOf } from "../history/stamp.ts";
import type { ChannelHistory } from "./history-place.ts";

/** The most bytes of live broadcasts one channel holds back while it catches up. */
export const MAX_HELD_BYTES = 1024 * 1024;

/** The most bytes one channel's catch-up reads from its history. */
export const MAX_CATCH_UP_BYTES = 1024 * 1024;

/** What a catch-up needs of the place it runs in. */
export interface CatchUpPlace {
  /**
   * The channels with subscribers here whose history every instance shares, each with the
   * position of the last broadcast heard on it here.
   */
  heard(): Iterable<readonly [string, StreamPosition]>;
  of(channel: string): ChannelHistory | undefined;
  /** Delivers a stamped frame to the subscribers here, as a broadcast received is. */
  deliver(channel: string, frame: string, except: string | undefined): void;
  report(error: unknown, channel: string): void;
}

/** A channel catching up: the live broadcasts held back meanwhile. */
interface Held {
  readonly frames: { readonly frame: string; readonly except: string | undefined }[];
  bytes: number;
  /** Held back too much: the live broadcasts go on, the catch-up's are not sent. */
  abandoned: boolean;
  readonly deliver: CatchUpPlace["deliver"];
}

/**
 * Sends this place's subscribers the broadcasts they missed while the relay could not
 * deliver to them (an outage, a failover, a slot moved), once it subscribed again, or
 * once a broadcast arrives with an offset past the next one (a gap): for each
 * channel with a shared history and subscribers here, what the stream kept after the last
 * broadcast heard here, then the live broadcasts held back meanwhile, each once and in
 * offset order. A stream that started a new epoch meanwhile (a failover) gives what it has
 * kept since; what the old one had past what was heard cannot be sent, and is reported.
 *
 * @example
 * ```ts
 * const catchUp = new CatchUp();
 * // A broadcast received on a channel catching up waits: `hold` says so.
 * if (!catchUp.hold(channel, frame, except)) deliver(channel, frame, except);
 * // The relay subscribed again after an outage:
 * await catchUp.run(place);
 * ```
 */
export class CatchUp {
  readonly #held = new Map<string, Held>();

  /** Whether `frame` must wait for the catch-up of `channel` (then it is kept to be sent). */
  hold(channel: string, frame: string, except: string | undefined): boolean {
    const held = this.#held.get(channel);
    if (!held || held.abandoned) return false;
    held.bytes += frame.length;
    if (held.bytes > MAX_HELD_BYTES) {
      // Those held go now, before this one (which its caller sends): in the order they came.
      held.abandoned = true;
      for (const { frame: text, except: but } of held.frames.splice(0)) {
        held.deliver(channel, text, but);
      }
      return false;
    }
    held.frames.push({ frame, except });
    return true;
  }

  /** Catches every channel heard here up, at once; resolves when all are done. */
  async run(place: CatchUpPlace): Promise<void> {
    const channels = [...place.heard()].filter(([channel]) => !this.#held.has(channel));
    await Promise.all(channels.map(([channel, since]) => this.#catchUp(place, channel, since)));
  }

  /**
   * Catches one channel up from `since` (a live broadcast came with an offset past the
   * next one: those between were missed); the broadcasts received meanwhile, the one that
   * showed the gap first, are held until it is done.
   */
  async channel(place: CatchUpPlace, channel: string, since: StreamPosition): Promise<void> {
    if (this.#held.has(channel)) return;
    await this.#catchUp(place, channel, since);
  }

  async #catchUp(place: CatchUpPlace, channel: string, since: StreamPosition): Promise<void> {
    const history = place.of(channel);
    if (!history?.store.shared) return;
    const held: Held = { frames: [], bytes: 0, abandoned: false, deliver: place.deliver };
    this.#held.set(channel, held);
    let missed: readonly string[] = [];
    try {
      missed = await this.#missed(place, channel, since, history);
    } catch (error) {
      place.report(error, channel);
    }
    this.#held.delete(channel);
    if (held.abandoned) {
      place.report(
        new Error(
          `The broadcasts missed on ${JSON.stringify(channel)} while the relay was away were not ` +
            `sent: more than ${MAX_HELD_BYTES} bytes came meanwhile.`,
        ),
        channel,
      );
      missed = [];
    }
    let last = since;
    for (const { frame, except } of [
      ...missed.map((text) => ({ frame: text, except: undefined })),
      ...held.frames,
    ]) {
      const position = positionOf(frame);
      if (position) {
        if (position.epoch === last.epoch && position.offset <= last.offset) continue;
        last = position;
      }
      place.deliver(channel, frame, except);
    }
  }

  /** What the stream kept after `since`, or, in a new epoch, all it kept in it. */
  async #missed(
    place: CatchUpPlace,
    channel: string,
    since: StreamPosition,
    { store, options }: ChannelHistory,
  ): Promise<readonly string[]> {
    if (!store.shared) return [];
    const recovery = await store.recover(channel, since, options, MAX_CATCH_UP_BYTES);
    if (recovery.recovered) return recovery.frames;
    const { position } = recovery;
    if (position.epoch === since.epoch) {
      place.report(
        new Error(
          `The broadcasts missed on ${JSON.stringify(channel)} while the relay was away are ` +
            "more than its history keeps (or than one catch-up sends): they were not sent.",
        ),
        channel,
      );
      return [];
    }
    place.report(
      new Error(
        `The history of ${JSON.stringify(channel)} started a new epoch while the relay was ` +
          "away (a failover?): what its subscribers here had not heard of the old one was lost.",
      ),
      channel,
    );
    if (position.offset === 0) return [];
    const fresh = await store.recover(
      channel,
      { offset: 0, epoch: position.epoch },
      options,
      MAX_CATCH_UP_BYTES,
    );
    return fresh.recovered ? fresh.frames : [];
  }
}
