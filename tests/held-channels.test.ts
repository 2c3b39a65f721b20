// A connection's subscriptions kept as small as they can be (nothing, one name, a set),
// and what a connection keeps for its frames between them.
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { type Connection, SocketAPI } from "../src/index.ts";
import {
  type HeldChannels,
  heldCount,
  heldNames,
  holdsChannel,
  withChannel,
  withoutChannel,
} from "../src/serve/held-channels.ts";
import type { Session } from "../src/serve/session.ts";
import { connect } from "./helpers/fake-client.ts";

describe("held channels", () => {
  it("keeps one name as the string itself, two or more as a set, and back", () => {
    let held: HeldChannels;
    expect(heldCount(held)).toBe(0);
    held = withChannel(held, "a");
    expect(held).toBe("a");
    expect(withChannel(held, "a")).toBe("a");
    held = withChannel(held, "b");
    expect(held).toEqual(new Set(["a", "b"]));
    const set = held;
    held = withChannel(held, "c");
    expect(held).toBe(set);
    expect([...heldNames(held)]).toEqual(["a", "b", "c"]);
    expect(holdsChannel(held, "b")).toBe(true);
    expect(holdsChannel(held, "d")).toBe(false);
    expect(withoutChannel(held, "d")).toBe(set);
    held = withoutChannel(held, "a");
    expect(heldCount(held)).toBe(2);
    held = withoutChannel(held, "b");
    expect(held).toBe("c");
    expect(withoutChannel(held, "x")).toBe("c");
    held = withoutChannel(held, "c");
    expect(held).toBeUndefined();
    expect([...heldNames(held)]).toEqual([]);
    expect(holdsChannel(held, "c")).toBe(false);
  });

  it("shows a connection's subscriptions as a set whether it holds none, one or several", async () => {
    const seen: string[][] = [];
    const app = new SocketAPI()
      .channel("rooms/{id}", { params: v.object({ id: v.string() }) }, () => null)
      .action("mine", (_, ctx) => {
        seen.push([...ctx.connection.subscriptions].sort());
      });
    const client = await connect(app);
    const mine = () => client.request({ type: "action", channel: "mine" });
    await mine();
    for (const room of ["rooms/1", "rooms/2"]) {
      await client.request({ type: "subscribe", channel: room });
      await mine();
    }
    await client.request({ type: "unsubscribe", channel: "rooms/1" });
    await mine();
    await client.request({ type: "unsubscribe", channel: "rooms/2" });
    await mine();
    expect(seen).toEqual([[], ["rooms/1"], ["rooms/1", "rooms/2"], ["rooms/2"], []]);
    const [connection] = app.connections as ReadonlySet<Connection>;
    expect(connection?.subscriptions.size).toBe(0);
  });

  it("counts a subscribe under way against maxSubscriptions while holding one name", async () => {
    let release: () => void = () => {};
    const app = new SocketAPI({ maxSubscriptions: 2, concurrency: 4 })
      .channel("quick/{id}", { params: v.object({ id: v.string() }) }, () => null)
      .channel("slow", () => new Promise<null>((resolve) => (release = () => resolve(null))));
    const client = await connect(app);
    await client.request({ type: "subscribe", channel: "quick/1" });
    client.send({ type: "subscribe", channel: "slow", id: "s" });
    expect(await client.request({ type: "subscribe", channel: "quick/2" })).toMatchObject({
      type: "error",
      code: "TOO_MANY_SUBSCRIPTIONS",
    });
    release();
    expect(await client.next()).toMatchObject({ type: "subscribed", channel: "slow", id: "s" });
  });

  it("keeps nothing for its frames between them unless a rate limit counts them", async () => {
    const unlimited = new SocketAPI({ rateLimit: false }).action("ping", () => 1);
    const limited = new SocketAPI().action("ping", () => 1);
    const sessionOf = (app: SocketAPI) => [...(app.connections as ReadonlySet<Session<object>>)][0];
    for (const app of [unlimited, limited]) {
      const client = await connect(app);
      expect((await client.request({ type: "action", channel: "ping" })).data).toBe(1);
      expect((await client.request({ type: "action", channel: "ping" })).data).toBe(1);
      expect(sessionOf(app)?.keepsIntake).toBe(app === limited);
    }
  });
});
