// A Durable Object sampled for a Worker's dashboard: the Worker asks each object that holds
// connections once a second while a page watches. The objects of one isolate share their
// app and its telemetry: they count into one tally, made with the first ask and let go
// 5 s after the last, and whichever object is asked first takes the counts (added up, the
// views count each frame once).
import type { AnyApp } from "../app.ts";
import type { Hub } from "../hub/hub.ts";
import type { Telemetry } from "../observe/telemetry.ts";
import { internalsOf } from "../serve/app-internals.ts";
import { WATCHED_FOR_MS } from "./admin-watch.ts";
import { type InstanceSample, sampleInstance } from "./instance-sample.ts";
import { Tally } from "./tally.ts";

const tallies = new WeakMap<Telemetry, { tally: Tally; timer: ReturnType<typeof setTimeout> }>();

/** `place` (one object's hub) as instance `id`, counting from now on if it was not. */
export function sampleShard(
  app: AnyApp,
  place: Hub,
  id: string,
  startedAt: number,
): InstanceSample {
  const internals = internalsOf(app);
  const { telemetry } = internals;
  let kept = tallies.get(telemetry);
  if (kept) clearTimeout(kept.timer);
  else {
    const tally = new Tally();
    telemetry.watch(tally);
    kept = { tally, timer: undefined as unknown as ReturnType<typeof setTimeout> };
    tallies.set(telemetry, kept);
  }
  kept.timer = setTimeout(() => {
    telemetry.watch(undefined);
    tallies.delete(telemetry);
  }, WATCHED_FOR_MS);
  return sampleInstance(
    { hub: place, templateOf: (channel) => internals.findChannel(channel)?.template.name },
    id,
    startedAt,
    kept.tally.take(),
  );
}
