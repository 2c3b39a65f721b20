// What a channel name may hold: well-formed Unicode only. A lone surrogate (sent as a JSON
// escape) has no UTF-8 form: Redis would write it as U+FFFD, so that two names met as one,
// and NATS's subject encoding threw on it, which stopped a relay's restore after an outage.
import fc from "fast-check";
import * as v from "valibot";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type NodeServer, serve } from "../adapters/node.ts";
import { natsRelay } from "../relays/nats.ts";
import { subjectToken } from "../relays/nats-subject.ts";
import { InvalidChannelParamsError, type Relay, SocketAPI } from "../src/index.ts";
import { type Broker, startNats } from "./helpers/brokers.ts";
import { openClient, type WsClient } from "./helpers/ws-client.ts";

const NOT_UNICODE = "Channel must be well-formed Unicode (it holds a lone surrogate).";

function roomsApp(onError: (error: unknown) => void) {
  return new SocketAPI({ onError }).channel(
    "rooms/{room}",
    { params: v.object({ room: v.string(), text: v.optional(v.string(), "") }) },
    ({ text }) => ({ text }),
  );
}

describe("a name with a lone surrogate", () => {
  let server: NodeServer;
  const sockets: WsClient[] = [];
  const reported: unknown[] = [];
  const app = roomsApp((error) => reported.push(error));

  beforeAll(async () => {
    server = await serve(app, { port: 0, host: "127.0.0.1" });
  });
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.ws.terminate();
  });
  afterAll(async () => {
    await server.close();
  });

  it("is refused by the socket before anything looks it up, without echoing it", async () => {
    const client = await openClient(server.url);
    sockets.push(client);
    client.sendRaw('{"type":"subscribe","channel":"rooms/a\\ud800","id":1}');
    expect(await client.next()).toEqual({
      type: "error",
      code: "INVALID_MESSAGE",
      message: NOT_UNICODE,
      id: 1,
    });
    // A surrogate pair is one character, and fine.
    expect(await client.request({ type: "subscribe", channel: "rooms/😀", id: 2 })).toEqual({
      type: "subscribed",
      channel: "rooms/😀",
      id: 2,
    });
  });

  it("is refused by /_broadcast with 400", async () => {
    const response = await fetch(`http://127.0.0.1:${server.port}/_broadcast`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"channel":"rooms/a\\ud800","data":{"text":"x"}}',
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: NOT_UNICODE });
  });

  it("cannot be built by a channel handle from its parameters", async () => {
    const broadcast = app.channels["rooms/{room}"]({ room: "a\ud800", text: "x" });
    await expect(broadcast).rejects.toBeInstanceOf(InvalidChannelParamsError);
    await expect(broadcast).rejects.toMatchObject({ issues: [{ path: ["room"] }] });
    expect(reported).toEqual([expect.any(InvalidChannelParamsError)]);
  });
});

/** Strings of any UTF-16 units: lone surrogates, pairs, `.`, `%`, `u`, spaces. */
function anyUnits(maxLength: number): fc.Arbitrary<string> {
  const unit = fc.oneof(
    fc.integer({ min: 0, max: 0xffff }),
    fc.integer({ min: 0xd800, max: 0xdfff }),
    fc.constantFrom(0x25, 0x75, 0x2e, 0x2a, 0x3e, 0x20, 0x44, 0x38),
  );
  return fc.array(unit, { maxLength }).map((units) => String.fromCharCode(...units));
}

describe("NATS subjects", () => {
  it("never give two names one subject, and never throw", () => {
    const name = anyUnits(12);
    fc.assert(
      fc.property(name, name, (a, b) => {
        fc.pre(a !== b);
        expect(subjectToken(a)).not.toBe(subjectToken(b));
      }),
      { numRuns: 5000 },
    );
    expect(subjectToken("a\ud800")).not.toBe(subjectToken("a\ufffd"));
  });

  it("never hold '.', '*', '>' or whitespace, which NATS gives a meaning", () => {
    fc.assert(
      fc.property(anyUnits(20), (name) => {
        expect(subjectToken(name)).toMatch(/^[A-Za-z0-9%_~!'()-]*$/);
      }),
    );
  });
});

describe("a NATS relay's restore after an outage", () => {
  let nats: Broker;
  const relays: Relay[] = [];

  beforeAll(async () => {
    nats = await startNats();
  });
  afterAll(async () => {
    await Promise.all(relays.map((relay) => relay.close()));
    await nats?.kill();
  });

  async function opened(heard: string[]): Promise<Relay> {
    const relay = natsRelay(nats.url);
    relays.push(relay);
    await relay.open(
      (channel, frame) => heard.push(`${channel} ${frame}`),
      () => {},
    );
    return relay;
  }

  it("subscribes again to every channel, whatever one of them holds", async () => {
    const heard: string[] = [];
    const listener = await opened(heard);
    const names = ["before", "odd\ud800", "after", "odd\ufffd"];
    for (const name of names.slice(0, 3)) await listener.join(name);
    const speaker = await opened([]);

    await nats.restart();
    // Both relays reconnect by themselves; the listener subscribes again to its three.
    const deadline = Date.now() + 15_000;
    while (!heard.includes("after ping") && Date.now() < deadline) {
      speaker.publish("after", "ping");
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    heard.length = 0;
    for (const name of names) speaker.publish(name, "hello");
    await new Promise((resolve) => setTimeout(resolve, 500));
    // The name after the odd one is heard again, and U+FFFD is another channel.
    expect(heard.sort()).toEqual(["after hello", "before hello", "odd\ud800 hello"]);
  });
});
