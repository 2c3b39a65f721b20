// Actions as SocketAPI 0.2 served them, and the defects we fixed on purpose.
import * as v from "valibot";
import { describe, expect, it, vi } from "vitest";
import { SocketAPI } from "../src/index.ts";
import { connect } from "./helpers/fake-client.ts";

describe("actions", () => {
  it("answers an action without input that returns nothing with no data key", async () => {
    const ran = vi.fn();
    const client = await connect(new SocketAPI().action("noop", () => ran()));
    expect(await client.request({ type: "action", channel: "noop" })).toEqual({
      type: "action",
      channel: "noop",
      status: "completed",
    });
    expect(ran).toHaveBeenCalledOnce();
  });

  it("ignores data sent to an action that declares no input", async () => {
    const handler = vi.fn((input: unknown) => input === undefined);
    const client = await connect(new SocketAPI().action("bare", handler));
    const reply = await client.request({ type: "action", channel: "bare", data: { x: 1 } });
    expect(reply.data).toBe(true);
  });

  it("echoes several inputs including a nested object", async () => {
    const app = new SocketAPI().action(
      "echo",
      {
        input: v.object({
          name: v.string(),
          count: v.number(),
          profile: v.object({ city: v.string(), tags: v.array(v.string()) }),
        }),
      },
      (input) => input,
    );
    const client = await connect(app);
    const data = { name: "Ada", count: 2, profile: { city: "London", tags: ["math"] } };
    expect(await client.request({ type: "action", channel: "echo", data })).toEqual({
      type: "action",
      channel: "echo",
      status: "completed",
      data,
    });
  });

  it("refuses a missing input", async () => {
    const app = new SocketAPI().action(
      "greet",
      { input: v.object({ name: v.string() }) },
      ({ name }) => name,
    );
    const client = await connect(app);
    const reply = await client.request({ type: "action", channel: "greet", data: {} });
    expect(reply).toMatchObject({ code: "INVALID_PARAMS", issues: [{ path: ["name"] }] });
  });

  it("validates nested schemas and points at the nested key", async () => {
    const app = new SocketAPI().action(
      "order",
      {
        input: v.object({
          address: v.object({ zip: v.pipe(v.string(), v.regex(/^\d{5}$/)) }),
          items: v.array(v.object({ qty: v.pipe(v.number(), v.minValue(1)) })),
        }),
      },
      () => "ok",
    );
    const client = await connect(app);
    const reply = await client.request({
      type: "action",
      channel: "order",
      data: { address: { zip: "12" }, items: [{ qty: 1 }, { qty: 0 }] },
    });
    expect(reply.code).toBe("INVALID_PARAMS");
    expect(reply.issues.map((i: { path: unknown[] }) => i.path)).toEqual([
      ["address", "zip"],
      ["items", 1, "qty"],
    ]);
  });

  it.each([0, "", false, [], {}, null])(
    "sends a falsy result %j (SocketAPI 0.2 dropped it)",
    async (value) => {
      const client = await connect(new SocketAPI().action("falsy", () => value));
      expect(await client.request({ type: "action", channel: "falsy" })).toEqual({
        type: "action",
        channel: "falsy",
        status: "completed",
        data: value,
      });
    },
  );

  it("passes the handler the schema's output: defaults and transforms applied", async () => {
    const app = new SocketAPI().action(
      "shout",
      {
        input: v.object({
          text: v.pipe(v.string(), v.toUpperCase()),
          times: v.optional(v.number(), 2),
        }),
      },
      ({ text, times }) => text.repeat(times),
    );
    const client = await connect(app);
    expect(
      (await client.request({ type: "action", channel: "shout", data: { text: "hi" } })).data,
    ).toBe("HIHI");
  });

  it("runs async schemas", async () => {
    const app = new SocketAPI().action(
      "check",
      {
        input: v.objectAsync({
          name: v.pipeAsync(
            v.string(),
            v.checkAsync(async (name) => name !== "taken", "Name is taken."),
          ),
        }),
      },
      ({ name }) => name,
    );
    const client = await connect(app);
    expect(
      (await client.request({ type: "action", channel: "check", data: { name: "free" } })).data,
    ).toBe("free");
    expect(
      await client.request({ type: "action", channel: "check", data: { name: "taken" } }),
    ).toMatchObject({
      code: "INVALID_PARAMS",
      issues: [{ message: "Name is taken.", path: ["name"] }],
    });
  });

  it("validates and transforms the result with an output schema", async () => {
    const onError = vi.fn();
    const app = new SocketAPI({ onError })
      .action("user", { output: v.object({ name: v.string() }) }, () => ({
        name: "Ada",
        passwordHash: "secret",
      }))
      .action("broken", { output: v.object({ name: v.string() }) }, () => ({ name: 5 }) as never);
    const client = await connect(app);
    expect((await client.request({ type: "action", channel: "user" })).data).toEqual({
      name: "Ada",
    });
    expect(await client.request({ type: "action", channel: "broken" })).toMatchObject({
      code: "INTERNAL_ERROR",
    });
    expect(onError.mock.calls[0]?.[0]).toBeInstanceOf(TypeError);
  });

  it("answers INTERNAL_ERROR when the result cannot be serialized", async () => {
    const onError = vi.fn();
    const client = await connect(new SocketAPI({ onError }).action("big", () => 10n));
    expect(await client.request({ type: "action", channel: "big", id: 1 })).toMatchObject({
      code: "INTERNAL_ERROR",
      id: 1,
    });
    expect(onError).toHaveBeenCalledOnce();
  });

  it("refuses to declare the same action twice", () => {
    const app = new SocketAPI().action("a", () => 1);
    expect(() => app.action("a", () => 2)).toThrow("Action 'a' is declared twice.");
  });
});
