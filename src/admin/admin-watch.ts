// Whether this instance counts for the dashboard, and its sampling once a second. Nothing
// runs while nobody watches: the telemetry hooks have no tally, no timer is set. A page
// watching here starts it; so does a page watching on another instance, which says so over
// the relay every second (a beacon on `//admin/watch`): every instance that heard a beacon
// in the last five seconds sends its samples on `//admin/samples`, and the instances with a
// page put them together with their own.
import type { Hub } from "../hub/hub.ts";
import type { Telemetry } from "../observe/telemetry.ts";
import { randomId } from "../random-id.ts";
import { type DashboardView, ViewBuilder } from "./dashboard-view.ts";
import { type InstanceSample, type SampledApp, sampleInstance } from "./instance-sample.ts";
import { Tally } from "./tally.ts";

/** The relay topics of the dashboard: the watchers' beacon, and the instances' samples. */
export const WATCH_TOPIC = "//admin/watch";
export const SAMPLES_TOPIC = "//admin/samples";

/** How often an instance samples itself while watched, in ms. */
export const SAMPLE_EVERY_MS = 1000;

/** How long a beacon keeps an instance sampling, and a silent instance listed, in ms. */
export const WATCHED_FOR_MS = 5000;

/** At most this many other instances are listed; at most this many samples wait for a view. */
export const MAX_INSTANCES = 256;
const MAX_WAITING_SAMPLES = 1024;

/** A sample larger than this (from a broker, a misconfigured peer) is not read. */
const MAX_SAMPLE_BYTES = 256 * 1024;

/** What the watch needs of the app it watches. */
export interface WatchedApp extends SampledApp {
  readonly hub: Hub;
  readonly telemetry: Telemetry;
}

/**
 * Where the samples of the other instances come from when it is not the relay: a Worker
 * asks each Durable Object that holds connections for its own, once a second. Such a watch
 * counts nothing itself and is not listed (a Worker holds no connection).
 */
export type SampleCollector = () => Promise<InstanceSample[]>;

/** An instance's dashboard sampling. */
export class AdminWatch {
  /** This instance's id in the dashboard (random: an instance has no other name). */
  readonly id: string = randomId(6);
  readonly startedAt: number = Date.now();
  readonly #app: WatchedApp;
  /** How many pages watch on this instance now. */
  readonly #watchersHere: () => number;
  /** Sends a view to the pages watching here. */
  readonly #show: (view: DashboardView) => void;
  #tally: Tally | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #watchedElsewhereUntil = 0;
  #listening: Promise<void> | undefined;
  readonly #latest = new Map<string, InstanceSample>();
  #fresh: InstanceSample[] = [];
  #builder = new ViewBuilder();
  #view: DashboardView | undefined;
  readonly #collect: SampleCollector | undefined;
  #collecting = false;

  constructor(
    app: WatchedApp,
    watchersHere: () => number,
    show: (view: DashboardView) => void,
    collect?: SampleCollector,
  ) {
    this.#app = app;
    this.#watchersHere = watchersHere;
    this.#show = show;
    this.#collect = collect;
  }

  /** Whether this instance is counting now (for tests and the bench). */
  get sampling(): boolean {
    return this.#timer !== undefined;
  }

  /** The last view shown here, for a page that just subscribed. */
  get view(): DashboardView | undefined {
    return this.#view;
  }

  /**
   * Hears the other instances over the relay (their beacons and samples): two topics the
   * relay holds from the first page, or from when the app is served with `admin` where a
   * relay is there, so that an instance with no page of its own answers another's.
   */
  listen(): Promise<void> {
    if (this.#listening) return this.#listening;
    const { hub } = this.#app;
    if (!hub.relay || this.#collect) return Promise.resolve();
    this.#listening = Promise.all([
      hub.listenDirect(WATCH_TOPIC, (message) => this.#heardBeacon(message)),
      hub.listenDirect(SAMPLES_TOPIC, (message) => this.#heardSample(message)),
    ]).then(() => undefined);
    return this.#listening;
  }

  /** A page began watching here: sample from now on (until nobody watches anywhere). */
  begin(): void {
    if (this.#timer !== undefined) return;
    this.#tally = new Tally();
    // A collector's instances count for themselves (sampleShard).
    if (!this.#collect) this.#app.telemetry.watch(this.#tally);
    this.#builder = new ViewBuilder();
    this.#timer = setInterval(() => this.#tick(), SAMPLE_EVERY_MS);
    unref(this.#timer);
    // Asked (or told) at once, the other instances count from now on, not from the first view.
    if (this.#collect) this.#collectSamples(this.#collect);
    else if (this.#app.hub.relay && this.#watchersHere() > 0) {
      void this.#send(WATCH_TOPIC, JSON.stringify({ from: this.id }));
    }
    void this.listen();
  }

  /** Stops sampling now (the server closes); a page watching again starts it again. */
  close(): void {
    this.#watchedElsewhereUntil = 0;
    this.#stop();
  }

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#tally = undefined;
    if (!this.#collect) this.#app.telemetry.watch(undefined);
    this.#latest.clear();
    this.#fresh = [];
    this.#view = undefined;
  }

  #tick(): void {
    const now = Date.now();
    const watchedHere = this.#watchersHere() > 0;
    const watchedElsewhere = now < this.#watchedElsewhereUntil;
    if (!watchedHere && !watchedElsewhere) {
      this.#stop();
      return;
    }
    const tally = this.#tally;
    if (!tally) return;
    const own = sampleInstance(this.#app, this.id, this.startedAt, tally.take(now), now);
    const { hub } = this.#app;
    if (this.#collect) this.#collectSamples(this.#collect);
    else if (hub.relay) {
      if (watchedElsewhere) void this.#send(SAMPLES_TOPIC, JSON.stringify(own));
      if (watchedHere) void this.#send(WATCH_TOPIC, JSON.stringify({ from: this.id }));
    }
    if (!watchedHere) return;
    for (const [id, sample] of this.#latest) {
      if (now - sample.at > WATCHED_FOR_MS) this.#latest.delete(id);
    }
    const view = this.#builder.build(
      own,
      this.#fresh,
      [...this.#latest.values()],
      this.#collect === undefined,
    );
    this.#fresh = [];
    this.#view = view;
    this.#show(view);
  }

  /** Asks the collector for the instances' samples: they are shown with the next view. */
  #collectSamples(collect: SampleCollector): void {
    if (this.#collecting) return;
    this.#collecting = true;
    collect()
      .then((samples) => {
        for (const sample of samples) this.#heard(sample);
      })
      .catch(() => {
        // An instance that could not answer is missing from this view, not from the next.
      })
      .finally(() => {
        this.#collecting = false;
      });
  }

  async #send(topic: string, message: string): Promise<void> {
    try {
      await this.#app.hub.sendDirect(topic, message);
    } catch {
      // The relay is down: its health says so, on the dashboard too.
    }
  }

  #heardBeacon(message: string): void {
    const beacon = parse(message) as { from?: unknown } | undefined;
    if (!beacon || typeof beacon.from !== "string" || beacon.from === this.id) return;
    this.#watchedElsewhereUntil = Date.now() + WATCHED_FOR_MS;
    this.begin();
  }

  #heardSample(message: string): void {
    if (this.#timer === undefined || this.#watchersHere() === 0) return;
    if (message.length > MAX_SAMPLE_BYTES) return;
    this.#heard(parse(message));
  }

  /** Another instance's sample: listed, and its counts added to the next view. */
  #heard(sample: unknown): void {
    if (this.#timer === undefined) return;
    if (!isSample(sample) || sample.id === this.id) return;
    if (!this.#latest.has(sample.id) && this.#latest.size >= MAX_INSTANCES) return;
    // A sample's `at` is the other instance's clock; it is listed by when it was heard here.
    this.#latest.set(sample.id, { ...sample, at: Date.now() });
    this.#fresh.push(sample);
    if (this.#fresh.length > MAX_WAITING_SAMPLES) this.#fresh.shift();
  }
}

function parse(message: string): unknown {
  try {
    return JSON.parse(message);
  } catch {
    return undefined;
  }
}

/** Whether `value` has what a view reads of a sample. */
function isSample(value: unknown): value is InstanceSample {
  const sample = value as Partial<InstanceSample> | undefined;
  return (
    typeof sample === "object" &&
    sample !== null &&
    typeof sample.id === "string" &&
    sample.id.length <= 64 &&
    typeof sample.runtime === "string" &&
    typeof sample.startedAt === "number" &&
    typeof sample.connections === "number" &&
    typeof sample.subscriptions === "number" &&
    Array.isArray(sample.templates) &&
    Array.isArray(sample.presence) &&
    typeof sample.counts === "object" &&
    sample.counts !== null &&
    typeof sample.counts.actions === "object"
  );
}

/** Lets the process exit with the timer set (where the runtime's timers have `unref`). */
function unref(timer: unknown): void {
  (timer as { unref?: () => void }).unref?.();
}
