// @vitest-environment jsdom
// The hooks of socketapi/react against a real server over real sockets (no mocked client):
// rendered with @testing-library/react in jsdom, the client's WebSocket `ws`. What the
// server saw is counted on the server: connections, subscribe frames (the channel's guard
// runs once per subscribe), cancelled streams.
import { act, cleanup, render, renderHook, waitFor } from "@testing-library/react";
import { createElement, type ReactNode, StrictMode, useState } from "react";
import { hydrateRoot } from "react-dom/client";
import { renderToString } from "react-dom/server";
import * as v from "valibot";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type NodeServer, serve } from "../adapters/node.ts";
import { RequestCancelledError, SocketAPI } from "../src/index.ts";
import { createSocketAPIHooks } from "../src/react/index.ts";

const seen = { connects: 0, subscribes: 0, cancelled: 0 };

const app = new SocketAPI({
  onConnect: (request) => {
    seen.connects += 1;
    const user = new URL(request.url).searchParams.get("user");
    if (user === "nobody") return new Response("Who are you?", { status: 401 });
    return { user: user ?? "anonymous" };
  },
  userId: (connection) => connection.state.user,
})
  .action("add", { input: v.object({ a: v.number(), b: v.number() }) }, ({ a, b }) => a + b)
  .channel(
    "chat",
    {
      params: v.object({ text: v.optional(v.string(), "") }),
      guard: () => {
        seen.subscribes += 1;
      },
    },
    ({ text }) => ({ text }),
  )
  .action("say", { input: v.object({ text: v.string() }) }, async (input, ctx) => {
    await ctx.channels.chat(input);
  })
  .channel("lobby", { presence: (ctx) => ({ name: ctx.connection.state.user }) }, () => null)
  .action("count", { input: v.object({ to: v.number() }) }, async function* ({ to }, ctx) {
    try {
      for (let i = 1; i <= to; i++) {
        yield i;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return "done";
    } catch (error) {
      if (error instanceof RequestCancelledError || ctx.signal.aborted) seen.cancelled += 1;
      throw error;
    } finally {
      if (ctx.signal.aborted) seen.cancelled += 1;
    }
  });

const hooks = createSocketAPIHooks<typeof app>();
const { SocketAPIProvider, useAction, useChannel, usePresence, useStream, useConnection } = hooks;

let server: NodeServer;

beforeAll(async () => {
  server = await serve(app, { port: 0 });
});
afterEach(async () => {
  cleanup();
  // The provider closes its client a moment after it unmounts.
  await waitFor(() => expect(app.connections.size).toBe(0));
});
afterAll(async () => {
  await server.close();
});

const wrapperFor =
  (query = "", strict = false) =>
  ({ children }: { children?: ReactNode }) => {
    const provider = createElement(SocketAPIProvider, {
      url: `${server.url}${query}`,
      options: { WebSocket },
      children,
    });
    return strict ? createElement(StrictMode, null, provider) : provider;
  };

// The test's components.
const Both = () => {
  const latest = useChannel("chat");
  const all = useChannel("chat", {
    initial: [] as string[],
    reducer: (texts, data) => [...texts, data.text],
  });
  const third = useChannel("chat");
  const say = useAction("say");
  return createElement(
    "div",
    null,
    createElement("p", { "data-testid": "latest" }, latest.data?.text ?? ""),
    createElement("p", { "data-testid": "all" }, all.data.join(",")),
    createElement("p", { "data-testid": "ready" }, String(third.ready)),
    createElement("button", { type: "button", onClick: () => say.call({ text: "hi" }) }, "say"),
  );
};

// The listener mounts once the socket is open: StrictMode then runs its effect, its
// cleanup and its effect again while frames go out at once.
const ReadyListener = () => {
  const chat = useChannel("chat");
  return createElement("p", { "data-testid": "ready" }, String(chat.ready));
};

const WhenOpen = () => {
  const connection = useConnection();
  return connection.status === "open" ? createElement(ReadyListener) : null;
};

const ChatListener = () => {
  useChannel("chat");
  return null;
};

const Toggle = () => {
  const [shown, setShown] = useState(true);
  return createElement(
    "div",
    null,
    shown ? createElement(ChatListener) : null,
    createElement("button", { type: "button", onClick: () => setShown(false) }, "hide"),
  );
};

const StatusLine = () => {
  const connection = useConnection();
  const chat = useChannel("chat");
  return createElement("p", null, `${connection.status} ${chat.ready}`);
};

describe("useAction", () => {
  it("calls the action: pending, then its typed result; an invalid input's error", async () => {
    const { result } = renderHook(() => useAction("add"), { wrapper: wrapperFor() });
    await waitFor(() => expect(app.connections.size).toBe(1));
    let answer: number | undefined;
    await act(async () => {
      const call = result.current.call({ a: 5, b: 3 });
      answer = await call;
    });
    expect(answer).toBe(8);
    expect(result.current).toMatchObject({ pending: false, data: 8, error: undefined });
    await act(async () => {
      await result.current.call({ a: 1, b: "two" as unknown as number }).catch(() => {});
    });
    expect(result.current.error?.code).toBe("INVALID_PARAMS");
    expect(result.current.data).toBeUndefined();
  });
});

describe("useChannel", () => {
  it("gives the latest broadcast, or a reducer's state, to every component, over one subscription", async () => {
    const before = seen.subscribes;
    const view = render(createElement(Both), { wrapper: wrapperFor() });
    await waitFor(() => expect(view.getByTestId("ready").textContent).toBe("true"));
    for (let i = 0; i < 3; i++) {
      await act(async () => {
        view.getByText("say").click();
      });
    }
    await waitFor(() => expect(view.getByTestId("all").textContent).toBe("hi,hi,hi"));
    expect(view.getByTestId("latest").textContent).toBe("hi");
    // Three components, one socket, one subscribe frame.
    expect(app.connections.size).toBe(1);
    expect(seen.subscribes - before).toBe(1);
    expect(await app.countSubscribers("chat")).toBe(1);
  });

  it("under StrictMode's double mount: one socket and one subscribe frame, none left behind", async () => {
    const before = { ...seen };
    const view = render(createElement(WhenOpen), { wrapper: wrapperFor("", true) });
    await waitFor(() => expect(view.getByTestId("ready").textContent).toBe("true"));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen.connects - before.connects).toBe(1);
    expect(app.connections.size).toBe(1);
    expect(seen.subscribes - before.subscribes).toBe(1);
    expect(await app.countSubscribers("chat")).toBe(1);
    view.unmount();
    await waitFor(() => expect(app.connections.size).toBe(0));
    expect(await app.countSubscribers("chat")).toBe(0);
  });

  it("unsubscribes a moment after its last component unmounts, and not before", async () => {
    const view = render(createElement(Toggle), { wrapper: wrapperFor() });
    await waitFor(async () => expect(await app.countSubscribers("chat")).toBe(1));
    await act(async () => {
      view.getByText("hide").click();
    });
    await waitFor(async () => expect(await app.countSubscribers("chat")).toBe(0));
    expect(app.connections.size).toBe(1);
  });
});

describe("usePresence", () => {
  it("lists the members, then applies joins and leaves", async () => {
    const ada = renderHook(() => usePresence("lobby"), { wrapper: wrapperFor("?user=ada") });
    await waitFor(() => expect(ada.result.current.members.map((m) => m.user)).toEqual(["ada"]));
    const bob = renderHook(() => usePresence("lobby"), { wrapper: wrapperFor("?user=bob") });
    await waitFor(() =>
      expect(ada.result.current.members.map((m) => m.user).sort()).toEqual(["ada", "bob"]),
    );
    expect(ada.result.current.members.find((m) => m.user === "bob")?.info).toEqual({
      name: "bob",
    });
    expect(ada.result.current.count).toBe(2);
    bob.unmount();
    await waitFor(() => expect(ada.result.current.members.map((m) => m.user)).toEqual(["ada"]), {
      timeout: 5000,
    });
  });
});

describe("useStream", () => {
  it("gives the chunks so far, then done and the result", async () => {
    const { result } = renderHook(() => useStream("count", { to: 3 }), {
      wrapper: wrapperFor(),
    });
    await waitFor(() => expect(result.current.done).toBe(true));
    expect(result.current.chunks).toEqual([1, 2, 3]);
    expect(result.current.result).toBe("done");
  });

  it("cancels the stream on the server when the component unmounts", async () => {
    const before = seen.cancelled;
    const { result, unmount } = renderHook(() => useStream("count", { to: 1000 }), {
      wrapper: wrapperFor(),
    });
    await waitFor(() => expect(result.current.chunks.length).toBeGreaterThan(2));
    unmount();
    await waitFor(() => expect(seen.cancelled).toBeGreaterThan(before));
  });
});

describe("useConnection", () => {
  it("says open, and the refusal when the server refused", async () => {
    const open = renderHook(() => useConnection(), { wrapper: wrapperFor() });
    await waitFor(() => expect(open.result.current.status).toBe("open"));
    open.unmount();
    const refused = renderHook(() => useConnection(), { wrapper: wrapperFor("?user=nobody") });
    await waitFor(() => expect(refused.result.current.status).toBe("closed"));
    expect(refused.result.current.refusal).toMatchObject({ code: "REFUSED", status: 401 });
  });
});

describe("on a server (SSR)", () => {
  it("renders without opening a socket or throwing; the hooks say connecting", async () => {
    const html = renderToString(createElement(wrapperFor(), null, createElement(StatusLine)));
    expect(html).toBe("<p>connecting false</p>");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(app.connections.size).toBe(0);
  });

  it("hydrates the server's HTML, then connects and subscribes", async () => {
    const element = createElement(wrapperFor(), null, createElement(StatusLine));
    const container = document.createElement("div");
    container.innerHTML = renderToString(element);
    document.body.append(container);
    const problems: unknown[] = [];
    let root: ReturnType<typeof hydrateRoot> | undefined;
    await act(async () => {
      root = hydrateRoot(container, element, { onRecoverableError: (e) => problems.push(e) });
    });
    await waitFor(() => expect(container.textContent).toBe("open true"));
    expect(problems).toEqual([]);
    await act(async () => root?.unmount());
    container.remove();
  });
});
