// The live docs page's script, in TypeScript so that it is checked; the page carries it as
// the JavaScript that scripts/page-script.mjs makes of it. Browser code only: it imports
// nothing at run time.
import type { DocsPageConfig } from "./docs-page.ts";

/**
 * The script of the docs page: compiled to JavaScript into docs-page-script.generated.ts
 * (`npm run page-script`) and run in the browser, where nothing of this module is in scope
 * but its argument.
 */
export function pageScript(config: DocsPageConfig): void {
  type Schema = {
    type?: string | string[];
    properties?: Record<string, Schema>;
    required?: string[];
    enum?: unknown[];
    const?: unknown;
    default?: unknown;
    examples?: unknown[];
    description?: string;
    items?: Schema;
    anyOf?: Schema[];
    oneOf?: Schema[];
  };
  type Message = { payload?: { properties?: Record<string, Schema> } };
  type Channel = {
    address?: string | null;
    description?: string;
    parameters?: Record<string, { description?: string; examples?: string[]; enum?: string[] }>;
    messages?: Record<string, Message>;
  };
  type Frame = Record<string, unknown>;

  const api = document.getElementById("api") as HTMLElement;
  const log = document.getElementById("log") as HTMLOListElement;
  const status = document.getElementById("status") as HTMLElement;
  // The socket's query (a token an app's onConnect reads): the page's own, or typed here.
  // It stays in this page: never stored, never shown in the status.
  const query = document.getElementById("query") as HTMLInputElement;
  query.value = location.search.replace(/^\?/, "");
  let socket: WebSocket | undefined;
  let nextId = 1;
  /** Per request id, what shows its answer. */
  const pending = new Map<number, (frame: Frame) => void>();
  /** Where the chunks of a streaming action's answer go, by request id, until it ends. */
  const chunks = new Map<number, (frame: Frame) => void>();
  /** Per concrete channel name, where its frames go. */
  const feeds = new Map<string, (frame: Frame) => void>();

  const el = <K extends keyof HTMLElementTagNameMap>(
    tag: K,
    attributes: Record<string, string> = {},
    ...children: (Node | string)[]
  ): HTMLElementTagNameMap[K] => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    node.append(...children);
    return node;
  };

  const show = (value: unknown) => JSON.stringify(value, null, 2);

  function record(direction: "in" | "out", frame: Frame): void {
    const time = new Date().toLocaleTimeString();
    const item = el("li", { class: direction }, el("time", {}, time), JSON.stringify(frame));
    if (frame.type === "error") item.classList.add("error");
    log.append(item);
    log.scrollTop = log.scrollHeight;
  }

  function connect(): void {
    socket?.close();
    const url = new URL(config.socket, location.href);
    if (url.protocol === "http:" || url.protocol === "https:") {
      url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    }
    for (const [key, value] of new URLSearchParams(query.value.trim().replace(/^\?/, ""))) {
      url.searchParams.set(key, value);
    }
    const ws = new WebSocket(url.href);
    socket = ws;
    status.textContent = "connecting…";
    status.className = "status";
    ws.onopen = () => {
      status.textContent = `connected to ${url.host}${url.pathname}`;
      status.className = "status open";
    };
    let opened = false;
    ws.addEventListener("open", () => {
      opened = true;
    });
    ws.onclose = (event) => {
      if (socket !== ws) return;
      // Refused before it opened: a browser is not told why (a token, an origin?).
      const hint = opened ? "" : " · refused? give the query the server needs and Reconnect";
      status.textContent = `closed (${event.code}${event.reason ? `: ${event.reason}` : ""})${hint}`;
      status.className = "status closed";
    };
    ws.onmessage = (event) => {
      let frame: Frame;
      try {
        frame = JSON.parse(String(event.data));
      } catch {
        return;
      }
      record("in", frame);
      if (frame.type === "chunk" && typeof frame.id === "number") {
        chunks.get(frame.id)?.(frame);
        return;
      }
      const answer = typeof frame.id === "number" ? pending.get(frame.id) : undefined;
      if (answer) {
        pending.delete(frame.id as number);
        chunks.delete(frame.id as number);
        answer(frame);
      } else if (typeof frame.channel === "string") feeds.get(frame.channel)?.(frame);
    };
  }

  /** Sends a frame; returns the id it was given, if it waits for an answer. */
  function send(
    frame: Frame,
    answer?: (frame: Frame) => void,
    onChunk?: (frame: Frame) => void,
  ): number | undefined {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      answer?.({ type: "error", message: "Not connected: press Reconnect." });
      return undefined;
    }
    let id: number | undefined;
    if (answer) {
      id = nextId++;
      frame.id = id;
      pending.set(id, answer);
      if (onChunk) chunks.set(id, onChunk);
    }
    record("out", frame);
    socket.send(JSON.stringify(frame));
    return id;
  }

  /** A value to start from: the schema's example, default or constant, else one of its type. */
  function sample(schema: Schema | undefined): unknown {
    if (!schema) return {};
    if (schema.examples?.length) return schema.examples[0];
    if (schema.default !== undefined) return schema.default;
    if (schema.const !== undefined) return schema.const;
    if (schema.enum?.length) return schema.enum[0];
    const choice = schema.anyOf?.[0] ?? schema.oneOf?.[0];
    if (choice) return sample(choice);
    const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
    if (type === "object") {
      const out: Record<string, unknown> = {};
      for (const [key, property] of Object.entries(schema.properties ?? {})) {
        if (schema.required?.includes(key)) out[key] = sample(property);
      }
      return out;
    }
    if (type === "array") return [];
    if (type === "integer" || type === "number") return 0;
    if (type === "boolean") return false;
    if (type === "string") return "";
    return null;
  }

  const isScalar = (schema: Schema) =>
    schema.enum !== undefined ||
    ["string", "number", "integer", "boolean"].includes(String(schema.type));

  /**
   * A form for an object schema with scalar properties (one field each), else a JSON editor;
   * `read` gives the value, or throws saying what is wrong.
   */
  function inputFor(schema: Schema | undefined): { node: HTMLElement; read(): unknown } {
    const properties = schema?.properties;
    if (schema?.type === "object" && properties && Object.values(properties).every(isScalar)) {
      const fields: [string, Schema, HTMLInputElement | HTMLSelectElement][] = [];
      const node = el("div");
      const initial = (sample(schema) ?? {}) as Record<string, unknown>;
      for (const [key, property] of Object.entries(properties)) {
        let field: HTMLInputElement | HTMLSelectElement;
        if (property.enum) {
          field = el("select", { name: key });
          for (const option of property.enum) field.append(el("option", {}, String(option)));
        } else if (property.type === "boolean") {
          field = el("input", { name: key, type: "checkbox" });
        } else {
          const numeric = property.type === "number" || property.type === "integer";
          field = el("input", { name: key, type: numeric ? "number" : "text" });
          if (property.type === "integer") field.setAttribute("step", "1");
          const start = initial[key] ?? property.examples?.[0] ?? property.default;
          if (start !== undefined) field.value = String(start);
        }
        const required = schema.required?.includes(key) ? " *" : "";
        const label = el("label", {}, el("span", {}, key + required), field);
        if (property.description)
          label.append(el("small", { class: "muted" }, property.description));
        node.append(label);
        fields.push([key, property, field]);
      }
      return {
        node,
        read() {
          const value: Record<string, unknown> = {};
          for (const [key, property, field] of fields) {
            if (field instanceof HTMLInputElement && field.type === "checkbox") {
              value[key] = field.checked;
            } else if (field.value === "" && !schema.required?.includes(key)) {
              // Left empty: left out.
            } else if (property.type === "number" || property.type === "integer") {
              value[key] = field.value === "" ? Number.NaN : Number(field.value);
            } else value[key] = field.value;
          }
          return value;
        },
      };
    }
    const area = el("textarea", { spellcheck: "false" });
    area.value = show(sample(schema));
    return {
      node: area,
      read() {
        return area.value.trim() === "" ? undefined : JSON.parse(area.value);
      },
    };
  }

  function schemaDetails(label: string, schema: unknown): HTMLElement {
    return el("details", {}, el("summary", {}, label), el("pre", {}, show(schema)));
  }

  /** Whether a `data` schema says nothing of a value: the action declares no input. */
  const saysNothing = (schema: Schema | undefined) =>
    !schema || Object.keys(schema).every((key) => key === "description");

  function actionCard(name: string, channel: Channel): HTMLElement {
    const call = channel.messages?.call?.payload?.properties?.data;
    const completed = channel.messages?.completed?.payload?.properties?.data;
    const input = saysNothing(call)
      ? { node: el("p", { class: "muted" }, "takes no input"), read: () => undefined }
      : inputFor(call);
    const result = el("div", { class: "result" });
    const button = el("button", { type: "button" }, "Call");
    // A streaming action: its chunks show as they arrive, and it may be cancelled.
    const streams = channel.messages?.chunk !== undefined;
    const cancel = el("button", { type: "button", hidden: "" }, "Cancel");
    let running: number | undefined;
    cancel.onclick = () => {
      if (running !== undefined) send({ type: "cancel", channel: name, id: running });
    };
    button.onclick = () => {
      let data: unknown;
      try {
        data = input.read();
      } catch (error) {
        result.className = "result error";
        result.textContent = `Not JSON: ${(error as Error).message}`;
        return;
      }
      result.className = "result";
      result.textContent = "…";
      const received: string[] = [];
      const onChunk = streams
        ? (frame: Frame) => {
            received.push(show(frame.data));
            result.textContent = received.join("\n");
          }
        : undefined;
      running = send(
        { type: "action", channel: name, ...(data === undefined ? {} : { data }) },
        (frame) => {
          running = undefined;
          cancel.hidden = true;
          const failed = frame.type === "error";
          const before = received.length > 0 ? `${received.join("\n")}\n` : "";
          result.className = failed ? "result error" : "result ok";
          result.textContent = failed
            ? `${before}${frame.code ?? "error"}: ${frame.message}${frame.issues ? `\n${show(frame.issues)}` : ""}`
            : `${before}${"data" in frame ? show(frame.data) : "completed (no data)"}`;
        },
        onChunk,
      );
      if (streams && running !== undefined) cancel.hidden = false;
    };
    return el(
      "article",
      { class: "card", "data-action": name },
      el("header", {}, el("span", { class: "kind" }, "action"), el("h3", {}, name)),
      el("p", { class: "desc" }, channel.description ?? ""),
      input.node,
      el("div", { class: "row" }, button, ...(streams ? [cancel] : [])),
      result,
      schemaDetails("input schema", call ?? {}),
      schemaDetails("result schema", completed ?? {}),
    );
  }

  function channelCard(name: string, channel: Channel): HTMLElement {
    const subscribe = channel.messages?.subscribe?.payload?.properties ?? {};
    const data = channel.messages?.data?.payload?.properties?.data;
    const parameters = Object.entries(channel.parameters ?? {});
    const fields = parameters.map(([param, info]) => {
      const field = el("input", { name: param, type: "text", placeholder: param });
      field.value = info.examples?.[0] ?? info.enum?.[0] ?? "";
      const label = el("label", {}, el("span", {}, `{${param}}`), field);
      if (info.description) label.append(el("small", { class: "muted" }, info.description));
      return { param, field, label };
    });
    const params = subscribe.data ? inputFor(subscribe.data) : undefined;
    const presence = subscribe.presence
      ? el("input", { type: "checkbox", name: "presence", checked: "" })
      : undefined;
    const feed = el("div", { class: "feed", "aria-live": "polite" });
    const state = el("span", { class: "muted" }, "not subscribed");
    const subscribeButton = el("button", { type: "button" }, "Subscribe");
    const unsubscribeButton = el("button", { type: "button", class: "secondary" }, "Unsubscribe");
    const concrete = () =>
      fields.reduce((text, { param, field }) => text.replace(`{${param}}`, field.value), name);
    const write = (line: string, error = false) => {
      const item = el("div", error ? { class: "error" } : {}, line);
      feed.append(item);
      feed.scrollTop = feed.scrollHeight;
    };
    subscribeButton.onclick = () => {
      const target = concrete();
      let values: unknown;
      try {
        values = params?.read();
      } catch (error) {
        write(`Not JSON: ${(error as Error).message}`, true);
        return;
      }
      const frame: Frame = { type: "subscribe", channel: target };
      if (values !== undefined && Object.keys(values as object).length > 0) frame.data = values;
      if (presence?.checked) frame.presence = true;
      feeds.set(target, (incoming) => {
        if (incoming.type === "data") write(show(incoming.data));
        else if (incoming.type === "join")
          write(`join ${incoming.user} ${JSON.stringify(incoming.info)}`);
        else if (incoming.type === "leave") write(`leave ${incoming.user}`);
        else if (incoming.type === "error") write(`${incoming.code}: ${incoming.message}`, true);
      });
      send(frame, (answer) => {
        if (answer.type === "subscribed") {
          state.textContent = `subscribed to ${target}`;
          if (Array.isArray(answer.members))
            write(`members (${answer.count}): ${JSON.stringify(answer.members)}`);
        } else write(`${answer.code ?? "error"}: ${answer.message}`, true);
      });
    };
    unsubscribeButton.onclick = () => {
      const target = concrete();
      send({ type: "unsubscribe", channel: target }, () => {
        feeds.delete(target);
        state.textContent = "not subscribed";
      });
    };
    return el(
      "article",
      { class: "card", "data-channel": name },
      el("header", {}, el("span", { class: "kind" }, "channel"), el("h3", {}, name)),
      el("p", { class: "desc" }, channel.description ?? ""),
      ...fields.map(({ label }) => label),
      ...(params ? [el("div", { class: "muted" }, "subscribe-time parameters"), params.node] : []),
      ...(presence ? [el("label", {}, el("span", {}, "presence"), presence)] : []),
      el("div", { class: "row" }, subscribeButton, unsubscribeButton, state),
      feed,
      schemaDetails("data schema", data ?? {}),
      schemaDetails("subscribe frame", channel.messages?.subscribe?.payload ?? {}),
    );
  }

  async function load(): Promise<void> {
    const response = await fetch(config.asyncapi, { headers: { accept: "application/json" } });
    if (!response.ok) throw new Error(`${config.asyncapi}: HTTP ${response.status}`);
    const document = (await response.json()) as {
      info?: { description?: string };
      channels?: Record<string, Channel>;
    };
    const actions: HTMLElement[] = [];
    const channels: HTMLElement[] = [];
    for (const channel of Object.values(document.channels ?? {})) {
      const name = channel.address;
      if (typeof name !== "string") continue;
      if (channel.messages?.call) actions.push(actionCard(name, channel));
      else if (channel.messages?.subscribe) channels.push(channelCard(name, channel));
    }
    api.replaceChildren(
      el("p", { class: "muted" }, document.info?.description ?? ""),
      el("p", {}, el("a", { href: config.asyncapi }, "AsyncAPI document")),
      el("h2", {}, `Actions (${actions.length})`),
      ...actions,
      el("h2", {}, `Channels (${channels.length})`),
      ...channels,
    );
  }

  (document.getElementById("reconnect") as HTMLButtonElement).onclick = connect;
  (document.getElementById("clear") as HTMLButtonElement).onclick = () => log.replaceChildren();
  load().catch((error: Error) => {
    api.replaceChildren(
      el("p", { class: "result error" }, `Could not load the API: ${error.message}`),
    );
  });
  connect();
}
