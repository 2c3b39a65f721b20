// The dashboard page's script, in TypeScript so that it is checked; the page carries it as
// the JavaScript that scripts/page-script.mjs makes of it. Browser code only: it imports
// nothing at run time.
import type { DashboardPageConfig } from "./dashboard-page.ts";
import type { DashboardView } from "./dashboard-view.ts";

/**
 * The script of the dashboard: compiled to JavaScript into dashboard-page-script.generated.ts
 * (`npm run page-script`) and run in the browser, where nothing of this module is in scope
 * but its argument.
 */
export function dashboardScript(config: DashboardPageConfig): void {
  type Frame = Record<string, unknown>;
  /** How many points the plots keep: five minutes of views. */
  const KEPT = 300;

  const $ = (id: string): HTMLElement => document.getElementById(id) as HTMLElement;
  const status = $("status");
  const series = { connections: [] as number[], received: [] as number[], sent: [] as number[] };
  const totals = {
    received: 0,
    sent: 0,
    opened: 0,
    closed: 0,
    actions: new Map<string, { count: number; errors: number }>(),
    errors: new Map<string, number>(),
    refusals: new Map<string, number>(),
  };
  const pending = new Map<number, (frame: Frame) => void>();
  let nextId = 2;
  let socket: WebSocket | undefined;
  let retry = 1000;

  function el(
    tag: string,
    attributes: Record<string, string> = {},
    ...children: (Node | string)[]
  ): HTMLElement {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    for (const child of children) node.append(child);
    return node;
  }

  function connect(): void {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${config.socket}`);
    socket = ws;
    status.textContent = "connecting…";
    status.className = "status";
    ws.onopen = () => {
      retry = 1000;
      status.textContent = "live";
      status.className = "status open";
      ws.send(JSON.stringify({ type: "subscribe", channel: "stats", id: 1 }));
    };
    ws.onclose = (event) => {
      if (socket !== ws) return;
      status.textContent = `closed (${event.code}) · again in ${retry / 1000} s`;
      status.className = "status closed";
      for (const answer of pending.values())
        answer({ type: "error", message: "The socket closed." });
      pending.clear();
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10_000);
    };
    ws.onmessage = (event) => {
      let frame: Frame;
      try {
        frame = JSON.parse(String(event.data));
      } catch {
        return;
      }
      if (frame.type === "data" && frame.channel === "stats" && frame.data) {
        show(frame.data as DashboardView);
        return;
      }
      const answer = typeof frame.id === "number" ? pending.get(frame.id) : undefined;
      if (answer) {
        pending.delete(frame.id as number);
        answer(frame);
      }
    };
  }

  /** Calls an action of the dashboard's socket; resolves with its answer frame. */
  function call(action: string, data: unknown): Promise<Frame> {
    return new Promise((resolve) => {
      if (!socket || socket.readyState !== WebSocket.OPEN) {
        resolve({ type: "error", message: "Not connected." });
        return;
      }
      const id = nextId++;
      pending.set(id, resolve);
      socket.send(JSON.stringify({ type: "action", channel: action, id, data }));
    });
  }

  const number = new Intl.NumberFormat("en");
  const fmt = (n: number): string => number.format(Math.round(n * 10) / 10);
  const ms = (n: number | null): string =>
    n === null ? "–" : n < 1 ? `${Math.max(1, Math.round(n * 1000))} µs` : `${fmt(n)} ms`;
  const bytes = (n: number): string =>
    n >= 2 ** 30
      ? `${(n / 2 ** 30).toFixed(1)} GiB`
      : n >= 2 ** 20
        ? `${(n / 2 ** 20).toFixed(1)} MiB`
        : `${fmt(n / 1024)} KiB`;
  const duration = (s: number): string =>
    s >= 86_400
      ? `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`
      : s >= 3600
        ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
        : s >= 60
          ? `${Math.floor(s / 60)} min ${s % 60} s`
          : `${s} s`;

  function add(map: Map<string, number>, from: Record<string, number>): void {
    for (const [key, count] of Object.entries(from)) map.set(key, (map.get(key) ?? 0) + count);
  }

  function keep(list: number[], value: number): void {
    list.push(value);
    if (list.length > KEPT) list.shift();
  }

  /** Fills a table's body with rows of cells; `key` names each row (`data-key`). */
  function rows(
    id: string,
    list: { key: string; cells: (string | Node)[] }[],
    empty: string,
  ): void {
    const body = $(id).querySelector("tbody") as HTMLElement;
    body.replaceChildren(
      ...(list.length === 0
        ? [el("tr", {}, el("td", { colspan: "9", class: "muted" }, empty))]
        : list.map(({ key, cells }) =>
            el("tr", { "data-key": key }, ...cells.map((cell) => el("td", {}, cell))),
          )),
    );
  }

  /** A line plot of `lines` (each a series and its class) in the SVG `id`. */
  function plot(id: string, lines: { values: number[]; className: string }[]): void {
    const svg = $(id);
    const width = 600;
    const height = 120;
    const max = Math.max(1, ...lines.flatMap(({ values }) => values));
    const ns = "http://www.w3.org/2000/svg";
    const shapes: Element[] = [];
    for (const { values, className } of lines) {
      // A minute wide at first, then as wide as what is kept (five minutes).
      const span = Math.max(60, values.length);
      const points = values
        .map(
          (value, i) =>
            `${((span - values.length + i) / (span - 1)) * width},${height - 4 - (value / max) * (height - 16)}`,
        )
        .join(" ");
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", points);
      line.setAttribute("class", className);
      shapes.push(line);
    }
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", "4");
    label.setAttribute("y", "12");
    label.textContent = fmt(max);
    shapes.push(label);
    svg.replaceChildren(...shapes);
  }

  function show(view: DashboardView): void {
    const { counts } = view;
    const seconds = Math.max(0.001, counts.ms / 1000);
    totals.received += counts.received;
    totals.sent += counts.sent;
    totals.opened += counts.opened;
    totals.closed += counts.closed;
    for (const [name, action] of Object.entries(counts.actions)) {
      const total = totals.actions.get(name) ?? { count: 0, errors: 0 };
      total.count += action.count;
      total.errors += action.errors;
      totals.actions.set(name, total);
    }
    add(totals.errors, counts.errors);
    add(totals.refusals, counts.refusals);
    keep(series.connections, view.connections);
    keep(series.received, counts.received / seconds);
    keep(series.sent, counts.sent / seconds);
    const actionsNow = Object.values(counts.actions).reduce((sum, a) => sum + a.count, 0);
    const errorsNow = Object.values(counts.errors).reduce((sum, n) => sum + n, 0);

    $("connections").textContent = fmt(view.connections);
    $("subscriptions").textContent = fmt(view.subscriptions);
    $("frames-in").textContent = fmt(counts.received / seconds);
    $("frames-out").textContent = fmt(counts.sent / seconds);
    $("actions-rate").textContent = fmt(actionsNow / seconds);
    $("errors-rate").textContent = fmt(errorsNow / seconds);
    $("instance-count").textContent =
      `${view.instances.length} instance${view.instances.length === 1 ? "" : "s"}`;
    $("totals").textContent =
      `since this page opened: ${fmt(totals.received)} frames in, ${fmt(totals.sent)} out, ` +
      `${fmt(totals.opened)} connections opened, ${fmt(totals.closed)} closed`;
    plot("plot-connections", [{ values: series.connections, className: "a" }]);
    plot("plot-frames", [
      { values: series.received, className: "a" },
      { values: series.sent, className: "b" },
    ]);

    rows(
      "instances",
      view.instances.map((i) => ({
        key: i.id,
        cells: [
          `${i.id}${i.here ? " (this page)" : ""}`,
          i.runtime,
          duration(i.uptime),
          fmt(i.connections),
          fmt(i.subscriptions),
          i.memory ? `${bytes(i.memory.rss)} / ${bytes(i.memory.heapUsed)}` : "–",
          i.relay ? `${i.relay.status}${i.relay.reason ? ` (${i.relay.reason})` : ""}` : "none",
          i.relay
            ? `${fmt(i.relay.published)} / ${fmt(i.relay.received)} / ${fmt(i.relay.lost)}`
            : "–",
          i.relay ? `${fmt(i.relay.disconnects)} · ${bytes(i.relay.pendingBytes)}` : "–",
          i.history === null
            ? "none"
            : i.history === "shared"
              ? "shared store"
              : `${fmt(i.history.streams)} · ${bytes(i.history.bytes)}`,
        ],
      })),
      "No instance yet.",
    );
    const names = new Set([...totals.actions.keys(), ...Object.keys(view.latency)]);
    rows(
      "actions",
      [...names].sort().map((name) => {
        const total = totals.actions.get(name) ?? { count: 0, errors: 0 };
        const now = counts.actions[name]?.count ?? 0;
        const latency = view.latency[name];
        return {
          key: name,
          cells: [
            name,
            fmt(now / seconds),
            fmt(total.count),
            fmt(total.errors),
            ms(latency?.p50 ?? null),
            ms(latency?.p99 ?? null),
          ],
        };
      }),
      "No action answered since this page opened.",
    );
    const byCount = (map: Map<string, number>) =>
      [...map].sort((a, b) => b[1] - a[1]).map(([key, n]) => ({ key, cells: [key, fmt(n)] }));
    rows("errors", byCount(totals.errors), "No error frame since this page opened.");
    rows("refusals", byCount(totals.refusals), "Nothing refused since this page opened.");
    rows(
      "templates",
      view.templates.map(([template, subscribers, channels]) => ({
        key: template,
        cells: [template, fmt(channels), fmt(subscribers)],
      })),
      "No subscription.",
    );
    rows(
      "presence",
      view.presence.map(([template, members]) => ({
        key: template,
        cells: [template, fmt(members)],
      })),
      "No channel with presence has members.",
    );
  }

  /** Asks for a second click before `act` (the operator's confirmation), then logs what it did. */
  function confirmed(
    button: HTMLButtonElement,
    question: () => string | undefined,
    act: () => Promise<Frame>,
  ): void {
    button.addEventListener("click", () => {
      const asked = question();
      if (asked === undefined) return;
      const box = $("confirm");
      const yes = el(
        "button",
        { type: "button", id: "confirm-yes" },
        "Confirm",
      ) as HTMLButtonElement;
      const no = el("button", { type: "button", class: "secondary" }, "Cancel");
      box.replaceChildren(el("span", {}, asked), yes, no);
      box.hidden = false;
      no.onclick = () => {
        box.hidden = true;
      };
      yes.onclick = async () => {
        box.hidden = true;
        const answer = await act();
        const ok = answer.status === "completed";
        const text = ok
          ? `${asked.replace(/\?$/, "")}: ${JSON.stringify(answer.data)}`
          : `${asked.replace(/\?$/, "")}: ${String(answer.message ?? answer.type)}`;
        $("log").prepend(
          el("li", { class: ok ? "ok" : "error" }, `${new Date().toLocaleTimeString()} ${text}`),
        );
        if (ok) list();
      };
    });
  }

  async function list(): Promise<void> {
    const user = ($("filter") as HTMLInputElement).value.trim();
    const answer = await call("connections", user ? { user } : {});
    if (answer.status !== "completed") return;
    const data = answer.data as {
      instance: string;
      total: number;
      connections: { id: string; user: string | null; subscriptions: number }[];
    };
    $("listed").textContent =
      `${data.total} on instance ${data.instance}${data.total > data.connections.length ? `, ${data.connections.length} listed` : ""}`;
    rows(
      "connection-list",
      data.connections.map((c) => {
        const button = el(
          "button",
          { type: "button", class: "secondary small" },
          "Disconnect",
        ) as HTMLButtonElement;
        confirmed(
          button,
          () => `Disconnect connection ${c.id}?`,
          () => call("disconnect", { connection: c.id }),
        );
        return { key: c.id, cells: [c.id, c.user ?? "–", fmt(c.subscriptions), button] };
      }),
      "No connection.",
    );
  }

  ($("list") as HTMLButtonElement).onclick = () => void list();
  confirmed(
    $("disconnect-user") as HTMLButtonElement,
    () => {
      const user = ($("user") as HTMLInputElement).value.trim();
      return user ? `Disconnect every connection of user ${user}?` : undefined;
    },
    () => call("disconnect", { user: ($("user") as HTMLInputElement).value.trim() }),
  );
  confirmed(
    $("broadcast") as HTMLButtonElement,
    () => {
      const channel = ($("channel") as HTMLInputElement).value.trim();
      const text = ($("data") as HTMLTextAreaElement).value.trim();
      try {
        if (text) JSON.parse(text);
      } catch {
        $("log").prepend(el("li", { class: "error" }, "The data is not JSON."));
        return undefined;
      }
      return channel ? `Broadcast to ${channel}?` : undefined;
    },
    () => {
      const text = ($("data") as HTMLTextAreaElement).value.trim();
      return call("broadcast", {
        channel: ($("channel") as HTMLInputElement).value.trim(),
        data: text ? JSON.parse(text) : null,
      });
    },
  );
  connect();
}
