// Dependencies (SocketAPI's Depends): validated, resolved, nested, and on subscribe.
import * as v from "valibot";
import { describe, expect, it, vi } from "vitest";
import {
  depends,
  ForbiddenError,
  SocketAPI,
  SocketAPIError,
  subscribeParam,
} from "../src/index.ts";
import { connect } from "./helpers/fake-client.ts";

describe("dependencies", () => {
  it("resolves a single dependency from the input nested under its key", async () => {
    const dep = depends(
      v.object({ a: v.number(), b: v.string() }),
      async ({ a, b }) => `${b}:${a * 2}`,
    );
    const app = new SocketAPI().action("use", { input: v.object({ dep }) }, ({ dep }) => dep);
    const client = await connect(app);
    const reply = await client.request({
      type: "action",
      channel: "use",
      data: { dep: { a: 42, b: "hello" } },
    });
    expect(reply.data).toBe("hello:84");
  });

  it("validates a dependency's input and points at its nested path", async () => {
    const resolve = vi.fn(() => 1);
    const dep = depends(v.object({ a: v.number() }), resolve);
    const app = new SocketAPI().action("use", { input: v.object({ dep }) }, ({ dep }) => dep);
    const client = await connect(app);
    const reply = await client.request({
      type: "action",
      channel: "use",
      data: { dep: { a: "x" } },
    });
    expect(reply).toMatchObject({ code: "INVALID_PARAMS", issues: [{ path: ["dep", "a"] }] });
    expect(resolve).not.toHaveBeenCalled();
  });

  it("resolves nested dependencies, inner ones first", async () => {
    const order: string[] = [];
    const inner = depends(v.object({ id: v.number() }), ({ id }) => {
      order.push("inner");
      return { id, name: `user${id}` };
    });
    const outer = depends(v.object({ user: inner, scope: v.string() }), ({ user, scope }) => {
      order.push("outer");
      return `${user.name}@${scope}`;
    });
    const app = new SocketAPI().action(
      "who",
      { input: v.object({ who: outer }) },
      ({ who }) => who,
    );
    const client = await connect(app);
    const reply = await client.request({
      type: "action",
      channel: "who",
      data: { who: { user: { id: 7 }, scope: "admin" } },
    });
    expect(reply.data).toBe("user7@admin");
    expect(order).toEqual(["inner", "outer"]);
  });

  it("resolves several dependencies next to plain inputs", async () => {
    const left = depends(v.object({ n: v.number() }), ({ n }) => n + 1);
    const right = depends(v.object({ n: v.number() }), async ({ n }) => n * 10);
    const app = new SocketAPI().action(
      "sum",
      { input: v.object({ left, right, offset: v.number() }) },
      ({ left, right, offset }) => left + right + offset,
    );
    const client = await connect(app);
    const reply = await client.request({
      type: "action",
      channel: "sum",
      data: { left: { n: 1 }, right: { n: 2 }, offset: 100 },
    });
    expect(reply.data).toBe(2 + 20 + 100);
  });

  it("gives a dependency the handler's context; one without a schema takes nothing from the client", async () => {
    const currentUser = depends((ctx) => {
      const user = (ctx.connection?.state as { user?: string } | undefined)?.user;
      if (!user) throw new ForbiddenError("Log in first.");
      return user;
    });
    const app = new SocketAPI({
      onConnect: (request) => {
        const user = new URL(request.url).searchParams.get("user");
        return user ? { user } : {};
      },
    }).action("whoami", { input: v.object({ me: currentUser }) }, ({ me }) => me);
    const alice = await connect(app, { url: "http://localhost/?user=alice" });
    expect((await alice.request({ type: "action", channel: "whoami" })).data).toBe("alice");
    const anonymous = await connect(app);
    expect(await anonymous.request({ type: "action", channel: "whoami" })).toMatchObject({
      code: "FORBIDDEN",
      message: "Log in first.",
    });
  });

  it("answers a dependency's SocketAPIError, and hides any other failure", async () => {
    const onError = vi.fn();
    const strict = depends(v.object({ n: v.number() }), ({ n }) => {
      if (n < 0) throw new SocketAPIError("Negative.", { code: "NEGATIVE" });
      if (n === 0) throw new Error("division by zero");
      return 1 / n;
    });
    const app = new SocketAPI({ onError }).action(
      "inv",
      { input: v.object({ strict }) },
      ({ strict }) => strict,
    );
    const client = await connect(app);
    const call = (n: number) =>
      client.request({ type: "action", channel: "inv", data: { strict: { n } } });
    expect((await call(4)).data).toBe(0.25);
    expect(await call(-1)).toMatchObject({ code: "NEGATIVE", message: "Negative." });
    expect(await call(0)).toMatchObject({ code: "INTERNAL_ERROR" });
    expect(onError).toHaveBeenCalledOnce();
  });

  it("resolves a dependency used on subscribe, before the channel handler", async () => {
    const member = depends(v.object({ token: v.string() }), ({ token }) => {
      if (token !== "good") throw new ForbiddenError("Bad token.");
      return { name: "ada" };
    });
    const app = new SocketAPI().channel(
      "members",
      { params: v.object({ member: subscribeParam(member) }), initialData: true },
      ({ member }) => ({ hello: member.name }),
    );
    const client = await connect(app);
    client.send({ type: "subscribe", channel: "members", data: { member: { token: "bad" } } });
    expect(await client.next()).toMatchObject({ code: "FORBIDDEN", message: "Bad token." });
    client.send({ type: "subscribe", channel: "members", data: { member: { token: "good" } } });
    expect(await client.next()).toEqual({ type: "subscribed", channel: "members" });
    expect(await client.next()).toEqual({
      type: "data",
      channel: "members",
      data: { hello: "ada" },
    });
  });

  it("lets a guard see the resolved dependencies", async () => {
    const role = depends(v.object({ token: v.string() }), ({ token }) =>
      token === "root" ? "admin" : "user",
    );
    const app = new SocketAPI().action(
      "admin_only",
      { input: v.object({ role }), guard: ({ role }) => role === "admin" },
      () => "welcome",
    );
    const client = await connect(app);
    const call = (token: string) =>
      client.request({ type: "action", channel: "admin_only", data: { role: { token } } });
    expect(await call("nobody")).toMatchObject({ code: "FORBIDDEN" });
    expect((await call("root")).data).toBe("welcome");
  });

  it("keeps working inside v.pipe", async () => {
    const dep = depends(v.object({ n: v.number() }), ({ n }) => n * 3);
    const app = new SocketAPI().action(
      "piped",
      {
        input: v.pipe(
          v.object({ dep }),
          v.check(() => true),
        ),
      },
      ({ dep }) => dep,
    );
    const client = await connect(app);
    expect(
      (await client.request({ type: "action", channel: "piped", data: { dep: { n: 2 } } })).data,
    ).toBe(6);
  });
});
