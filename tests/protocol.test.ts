// Every row of protocol.md's check table, in order, with its exact code and text; run on
// socketapi/testing's in-memory client, over the real core.
import * as v from "valibot";
import { describe, expect, it, vi } from "vitest";
import { ForbiddenError, SocketAPI, SocketAPIError } from "../src/index.ts";
import { createTestClient } from "../src/testing.ts";

function protocolApp(onError = vi.fn(), maxMessageBytes?: number) {
  const app = new SocketAPI({ onError, ...(maxMessageBytes ? { maxMessageBytes } : {}) })
    .action(
      "add_numbers",
      { input: v.object({ a: v.pipe(v.number(), v.integer()), b: v.number() }) },
      ({ a, b }) => a + b,
    )
    .channel("chat", { params: v.object({ token: v.optional(v.string(), "") }) }, () => "x")
    .action(
      "guarded",
      { input: v.object({ n: v.number() }), guard: ({ n }) => n > 0 },
      ({ n }) => n,
    )
    .action(
      "guarded_message",
      {
        guard: () => {
          throw new ForbiddenError("Admins only.");
        },
      },
      () => 1,
    )
    .action("room_full", () => {
      throw new SocketAPIError("Room is full.", { code: "ROOM_FULL" });
    })
    .action("plain_public_error", () => {
      throw new SocketAPIError("Nope.");
    })
    .action("crash", () => {
      throw new Error("database password is hunter2");
    });
  return { app, onError };
}

describe("check 1: binary frames", () => {
  it("refuses a binary frame with INVALID_MESSAGE and stays open", async () => {
    const client = await createTestClient(protocolApp().app);
    client.sendBinary();
    expect(await client.next()).toEqual({
      type: "error",
      code: "INVALID_MESSAGE",
      message: "Binary frames are not supported.",
    });
    expect(client.connection.isOpen).toBe(true);
  });
});

describe("check 2: frame size", () => {
  const smallApp = () => protocolApp(vi.fn(), 64).app;

  it("refuses a frame over the limit with MESSAGE_TOO_LARGE naming the limit", async () => {
    const client = await createTestClient(smallApp());
    client.sendRaw(
      JSON.stringify({ type: "action", channel: "add_numbers", data: "x".repeat(64) }),
    );
    expect(await client.next()).toEqual({
      type: "error",
      code: "MESSAGE_TOO_LARGE",
      message: "Message exceeds 64 bytes.",
    });
  });

  it("counts bytes in UTF-8, not characters", async () => {
    const client = await createTestClient(smallApp());
    // 22 characters but 66 bytes: three bytes per character.
    client.sendRaw("€".repeat(22));
    expect((await client.next()).code).toBe("MESSAGE_TOO_LARGE");
    // 21 characters of two bytes: 42 bytes, under the limit, so it reaches the JSON check.
    client.sendRaw("é".repeat(21));
    expect((await client.next()).code).toBe("INVALID_JSON");
  });

  it("checks the size before the JSON", async () => {
    const client = await createTestClient(smallApp());
    client.sendRaw(`{${"x".repeat(80)}`);
    expect((await client.next()).code).toBe("MESSAGE_TOO_LARGE");
  });
});

describe("check 3: JSON", () => {
  it("refuses text that is not JSON with INVALID_JSON", async () => {
    const client = await createTestClient(protocolApp().app);
    client.sendRaw("{not json");
    expect(await client.next()).toEqual({
      type: "error",
      code: "INVALID_JSON",
      message: "Invalid JSON.",
    });
  });
});

describe("check 4: JSON object", () => {
  it.each(["[1,2,3]", "42", "null", '"text"', "true"])("refuses %s", async (raw) => {
    const client = await createTestClient(protocolApp().app);
    client.sendRaw(raw);
    expect(await client.next()).toEqual({
      type: "error",
      code: "INVALID_MESSAGE",
      message: "Message must be a JSON object.",
    });
  });
});

describe("check 5 and 6: type", () => {
  it.each([{}, { type: "" }, { type: null }])("refuses a missing type in %j", async (frame) => {
    const client = await createTestClient(protocolApp().app);
    client.send({ ...frame, channel: "chat" });
    expect(await client.next()).toEqual({
      type: "error",
      code: "INVALID_MESSAGE",
      message: "Message type is required.",
    });
  });

  it.each([7, true, {}, ["action"]])("refuses type %j that is not a string", async (type) => {
    const client = await createTestClient(protocolApp().app);
    client.send({ type, channel: "chat" });
    expect(await client.next()).toEqual({
      type: "error",
      code: "INVALID_MESSAGE",
      message: "Message type must be a string.",
    });
  });

  it("echoes a valid id on these errors", async () => {
    const client = await createTestClient(protocolApp().app);
    client.send({ channel: "chat", id: "r1" });
    expect(await client.next()).toMatchObject({ message: "Message type is required.", id: "r1" });
  });
});

describe("check 7: ping", () => {
  it("answers the exact ping text with pong", async () => {
    const client = await createTestClient(protocolApp().app);
    client.sendRaw('{"type":"ping"}');
    await client.next();
    expect(client.frames).toEqual(['{"type":"pong"}']);
  });

  it("answers a ping spelled differently, before checking the channel", async () => {
    const client = await createTestClient(protocolApp().app);
    client.sendRaw('{ "type" : "ping", "id": 5 }');
    expect(await client.next()).toEqual({ type: "pong" });
  });
});

describe("check 8 and 9: channel", () => {
  it.each([{}, { channel: "" }, { channel: null }])(
    "refuses a missing channel in %j",
    async (frame) => {
      const client = await createTestClient(protocolApp().app);
      client.send({ type: "subscribe", ...frame });
      expect(await client.next()).toEqual({
        type: "error",
        code: "INVALID_MESSAGE",
        message: "Channel is required.",
      });
    },
  );

  it.each([5, true, { name: "chat" }])(
    "refuses channel %j that is not a string",
    async (channel) => {
      const client = await createTestClient(protocolApp().app);
      client.send({ type: "action", channel });
      expect(await client.next()).toEqual({
        type: "error",
        code: "INVALID_MESSAGE",
        message: "Channel must be a string.",
      });
    },
  );

  it.each(["\ud800", "chat\udfff", "\udc00\ud83d"])(
    "refuses a channel holding a lone surrogate (%s), before the id and the type",
    async (escaped) => {
      const client = await createTestClient(protocolApp().app);
      client.sendRaw(`{"type":"nope","channel":"${escaped}","id":3}`);
      expect(await client.next()).toEqual({
        type: "error",
        code: "INVALID_MESSAGE",
        message: "Channel must be well-formed Unicode (it holds a lone surrogate).",
        id: 3,
      });
    },
  );
});

describe("check 10: id", () => {
  it.each([
    ["an object", { n: 1 }],
    ["null", null],
    ["a boolean", true],
    ["a string of 129 characters", "x".repeat(129)],
  ])("refuses an id that is %s, without echoing it", async (_, id) => {
    const client = await createTestClient(protocolApp().app);
    client.send({ type: "action", channel: "add_numbers", data: { a: 1, b: 1 }, id });
    expect(await client.next()).toEqual({
      type: "error",
      code: "INVALID_MESSAGE",
      message: "Message id must be a string or a number.",
    });
  });

  it("refuses a number that is not finite (1e999 parses to Infinity)", async () => {
    const client = await createTestClient(protocolApp().app);
    client.sendRaw('{"type":"action","channel":"add_numbers","id":1e999}');
    expect((await client.next()).message).toBe("Message id must be a string or a number.");
  });

  it("echoes a string id of 128 characters and a numeric id", async () => {
    const client = await createTestClient(new SocketAPI().action("one", () => 1));
    const long = "x".repeat(128);
    expect(await client.request({ type: "action", channel: "one", id: long })).toEqual({
      type: "action",
      channel: "one",
      status: "completed",
      data: 1,
      id: long,
    });
    expect((await client.request({ type: "action", channel: "one", id: 2.5 })).id).toBe(2.5);
  });
});

describe("check 11: type", () => {
  it("refuses an unknown type with UNKNOWN_TYPE, without the channel", async () => {
    const client = await createTestClient(protocolApp().app);
    client.send({ type: "publish", channel: "chat", id: 4 });
    expect(await client.next()).toEqual({
      type: "error",
      code: "UNKNOWN_TYPE",
      message: "Unknown message type: publish.",
      id: 4,
    });
  });
});

describe("check 12 and 13: names", () => {
  it("refuses an unknown action with NOT_FOUND, channel and id", async () => {
    const client = await createTestClient(protocolApp().app);
    client.send({ type: "action", channel: "nonexistent", id: 7 });
    expect(await client.next()).toEqual({
      type: "error",
      code: "NOT_FOUND",
      message: "Action 'nonexistent' not found.",
      channel: "nonexistent",
      id: 7,
    });
  });

  it("refuses a subscription to an unknown channel", async () => {
    const client = await createTestClient(protocolApp().app);
    client.send({ type: "subscribe", channel: "nonexistent" });
    expect(await client.next()).toEqual({
      type: "error",
      code: "NOT_FOUND",
      message: "Channel 'nonexistent' not found.",
      channel: "nonexistent",
    });
  });

  it("does not find a channel by an action's name, nor an action by a channel's", async () => {
    const client = await createTestClient(protocolApp().app);
    client.send({ type: "subscribe", channel: "add_numbers" });
    expect((await client.next()).message).toBe("Channel 'add_numbers' not found.");
    client.send({ type: "action", channel: "chat" });
    expect((await client.next()).message).toBe("Action 'chat' not found.");
  });

  it("does not find names inherited from Object.prototype", async () => {
    const client = await createTestClient(protocolApp().app);
    for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
      client.send({ type: "action", channel: name });
      expect((await client.next()).code).toBe("NOT_FOUND");
      client.send({ type: "subscribe", channel: name });
      expect((await client.next()).code).toBe("NOT_FOUND");
    }
  });
});

describe("check 14 and 15: parameters", () => {
  it("refuses invalid action input with INVALID_PARAMS and the issues", async () => {
    const client = await createTestClient(protocolApp().app);
    client.send({ type: "action", channel: "add_numbers", data: { a: "five", b: 3 }, id: "x" });
    expect(await client.next()).toEqual({
      type: "error",
      code: "INVALID_PARAMS",
      message: "Invalid parameters for action 'add_numbers'",
      channel: "add_numbers",
      id: "x",
      issues: [{ message: 'Invalid type: Expected number but received "five"', path: ["a"] }],
    });
  });

  it("treats absent data as {} and lists every missing key", async () => {
    const client = await createTestClient(protocolApp().app);
    client.send({ type: "action", channel: "add_numbers" });
    const error = await client.next();
    expect(error.code).toBe("INVALID_PARAMS");
    expect(error.issues.map((issue: { path: string[] }) => issue.path)).toEqual([["a"], ["b"]]);
  });

  it("refuses invalid subscribe parameters with INVALID_PARAMS for the channel", async () => {
    const app = new SocketAPI().channel(
      "private",
      {
        params: v.object({
          token: v.pipe(v.string(), v.minLength(3)),
        }),
      },
      () => ({}),
    );
    const client = await createTestClient(app);
    client.send({ type: "subscribe", channel: "private", id: 1 });
    expect(await client.next()).toMatchObject({
      type: "error",
      code: "INVALID_PARAMS",
      message: "Invalid parameters for channel 'private'",
      channel: "private",
      id: 1,
      issues: [{ path: ["token"] }],
    });
  });

  it("refuses subscribe data that is not an object", async () => {
    const client = await createTestClient(protocolApp().app);
    client.send({ type: "subscribe", channel: "chat", data: [1] });
    expect(await client.next()).toEqual({
      type: "error",
      code: "INVALID_PARAMS",
      message: "Invalid parameters for channel 'chat'",
      channel: "chat",
      issues: [{ message: "Subscribe parameters must be an object.", path: [] }],
    });
  });
});

describe("check 16: guards", () => {
  it("answers FORBIDDEN with the default text when a guard returns false", async () => {
    const client = await createTestClient(protocolApp().app);
    client.send({ type: "action", channel: "guarded", data: { n: -1 }, id: 9 });
    expect(await client.next()).toEqual({
      type: "error",
      code: "FORBIDDEN",
      message: "Forbidden.",
      channel: "guarded",
      id: 9,
    });
    expect(
      await client.request({ type: "action", channel: "guarded", data: { n: 2 } }),
    ).toMatchObject({ status: "completed", data: 2 });
  });

  it("answers FORBIDDEN with the guard's own message", async () => {
    const client = await createTestClient(protocolApp().app);
    client.send({ type: "action", channel: "guarded_message" });
    expect(await client.next()).toMatchObject({ code: "FORBIDDEN", message: "Admins only." });
  });
});

describe("check 17 and 18: handler errors", () => {
  it("sends a SocketAPIError's code and message", async () => {
    const client = await createTestClient(protocolApp().app);
    client.send({ type: "action", channel: "room_full", id: "r" });
    expect(await client.next()).toEqual({
      type: "error",
      code: "ROOM_FULL",
      message: "Room is full.",
      channel: "room_full",
      id: "r",
    });
  });

  it("uses HANDLER_ERROR when a SocketAPIError has no code", async () => {
    const client = await createTestClient(protocolApp().app);
    client.send({ type: "action", channel: "plain_public_error" });
    expect(await client.next()).toMatchObject({ code: "HANDLER_ERROR", message: "Nope." });
  });

  it("hides any other error behind INTERNAL_ERROR and hands it to onError", async () => {
    const { app, onError } = protocolApp();
    const client = await createTestClient(app);
    client.send({ type: "action", channel: "crash", id: 3 });
    const frame = await client.next();
    expect(frame).toEqual({
      type: "error",
      code: "INTERNAL_ERROR",
      message: "Internal server error.",
      channel: "crash",
      id: 3,
    });
    expect(JSON.stringify(frame)).not.toContain("hunter2");
    expect(onError).toHaveBeenCalledOnce();
    const [error, info] = onError.mock.calls[0] as [Error, { channel: string; phase: string }];
    expect(error.message).toBe("database password is hunter2");
    expect(info).toMatchObject({ channel: "crash", phase: "action" });
  });
});

describe("the order of the checks", () => {
  it("reports a missing type before a missing channel", async () => {
    const client = await createTestClient(protocolApp().app);
    client.send({ id: 1 });
    expect((await client.next()).message).toBe("Message type is required.");
  });

  it("reports a missing channel before an unknown type", async () => {
    const client = await createTestClient(protocolApp().app);
    client.send({ type: "bogus" });
    expect((await client.next()).message).toBe("Channel is required.");
  });

  it("reports a bad id before an unknown type", async () => {
    const client = await createTestClient(protocolApp().app);
    client.send({ type: "bogus", channel: "chat", id: {} });
    expect((await client.next()).message).toBe("Message id must be a string or a number.");
  });

  it("reports an unknown action before checking its input", async () => {
    const client = await createTestClient(protocolApp().app);
    client.send({ type: "action", channel: "nope", data: "not an object" });
    expect((await client.next()).code).toBe("NOT_FOUND");
  });

  it("validates the input before the guard runs", async () => {
    const guard = vi.fn(() => true);
    const app = new SocketAPI().action("g", { input: v.object({ n: v.number() }), guard }, () => 1);
    const client = await createTestClient(app);
    client.send({ type: "action", channel: "g", data: { n: "x" } });
    expect((await client.next()).code).toBe("INVALID_PARAMS");
    expect(guard).not.toHaveBeenCalled();
  });

  it("does not run the handler when the guard refuses", async () => {
    const handler = vi.fn(() => 1);
    const app = new SocketAPI().action("g", { guard: () => false }, handler);
    const client = await createTestClient(app);
    client.send({ type: "action", channel: "g" });
    expect((await client.next()).code).toBe("FORBIDDEN");
    expect(handler).not.toHaveBeenCalled();
  });

  it("keeps the connection open after every kind of error", async () => {
    const client = await createTestClient(protocolApp().app);
    for (const raw of [
      "x",
      "[]",
      "{}",
      '{"type":1}',
      '{"type":"action"}',
      '{"type":"zzz","channel":"a"}',
    ]) {
      client.sendRaw(raw);
      expect((await client.next()).type).toBe("error");
    }
    expect(client.connection.isOpen).toBe(true);
    expect(client.status).toBe("open");
  });
});
