// The dashboard page (`/admin`): one HTML document with its style and script inside (no CDN:
// it works where the network has no internet), which opens its own socket to the same path
// and shows what the server sends it every second. Plots are plain SVG drawn by its script.
import { DASHBOARD_SCRIPT } from "./dashboard-page-script.generated.ts";

/** What the page is told by the server. */
export interface DashboardPageConfig {
  title: string;
  /** The socket's path on this server (the page's own). */
  socket: string;
}

/** The page's script element's text: the same for every page, so its hash is in the CSP. */
const SCRIPT_TEXT = `${DASHBOARD_SCRIPT}
dashboardScript(JSON.parse(document.getElementById("config").textContent));`;

let scriptHash: Promise<string> | undefined;

/** The CSP source of the page's script (`'sha256-…'`): no other script may run on the page. */
export function dashboardScriptSource(): Promise<string> {
  scriptHash ??= crypto.subtle
    .digest("SHA-256", new TextEncoder().encode(SCRIPT_TEXT))
    .then((digest) => {
      let binary = "";
      for (const byte of new Uint8Array(digest)) binary += String.fromCharCode(byte);
      return `'sha256-${btoa(binary)}'`;
    });
  return scriptHash;
}

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** The page, for `config`. */
export function dashboardPage(config: DashboardPageConfig): string {
  // `<` escaped: the configuration cannot close the element it sits in.
  const json = JSON.stringify(config).replace(/</g, "\\u003c");
  const title = escapeHtml(config.title);
  const table = (id: string, caption: string, heads: string[]): string =>
    `<section class="card"><h2>${caption}</h2><table id="${id}"><thead><tr>${heads.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody></tbody></table></section>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${title} · admin</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>${title} <span class="muted">admin</span></h1><span id="instance-count" class="muted"></span><span id="status" class="status">connecting…</span></header>
<main>
<section class="numbers">
<div class="card"><span class="label">connections</span><strong id="connections">–</strong></div>
<div class="card"><span class="label">subscriptions</span><strong id="subscriptions">–</strong></div>
<div class="card"><span class="label">frames in / s</span><strong id="frames-in">–</strong></div>
<div class="card"><span class="label">frames out / s</span><strong id="frames-out">–</strong></div>
<div class="card"><span class="label">actions / s</span><strong id="actions-rate">–</strong></div>
<div class="card"><span class="label">errors / s</span><strong id="errors-rate">–</strong></div>
</section>
<p id="totals" class="muted"></p>
<section class="plots">
<div class="card"><h2>Connections <span class="muted">up to 5 min</span></h2><svg id="plot-connections" viewBox="0 0 600 120" preserveAspectRatio="none" role="img" aria-label="Connections over time"></svg></div>
<div class="card"><h2>Frames per second <span class="key a">in</span> <span class="key b">out</span></h2><svg id="plot-frames" viewBox="0 0 600 120" preserveAspectRatio="none" role="img" aria-label="Frames in and out per second"></svg></div>
</section>
${table("instances", "Instances", ["instance", "runtime", "uptime", "connections", "subscriptions", "RSS / heap", "relay", "published / received / lost", "disconnects · pending", "history"])}
<div class="two">
${table("actions", "Actions", ["action", "per s", "total", "errors", "p50", "p99"])}
${table("templates", "Busiest channels", ["template", "channels", "subscribers"])}
</div>
<div class="two">
${table("errors", "Errors by code", ["code", "frames"])}
${table("refusals", "Refusals by limit", ["limit", "refused"])}
</div>
${table("presence", "Presence", ["template", "members"])}
<section class="card"><h2>Operator</h2>
<div id="confirm" class="confirm" hidden></div>
<div class="row"><input id="filter" placeholder="user (empty: all)" aria-label="Filter by user"><button id="list" type="button">List connections</button><span id="listed" class="muted"></span></div>
<table id="connection-list"><thead><tr><th>connection</th><th>user</th><th>subscriptions</th><th></th></tr></thead><tbody></tbody></table>
<div class="row"><input id="user" placeholder="user id" aria-label="User to disconnect"><button id="disconnect-user" type="button">Disconnect user</button></div>
<div class="row"><input id="channel" placeholder="channel (rooms/42)" aria-label="Channel"><textarea id="data" placeholder='{"text": "test"}' aria-label="Data (JSON)"></textarea><button id="broadcast" type="button">Broadcast test message</button></div>
<ol id="log" class="log"></ol>
</section>
</main>
<script type="application/json" id="config">${json}</script>
<script>${SCRIPT_TEXT}</script>
</body>
</html>
`;
}

/** The page a request without the token gets, with 401: a field to give it. */
export function signInPage(title: string, path: string, wrong: boolean): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<title>${escapeHtml(title)} · admin</title><style>${STYLE}</style></head>
<body><main class="narrow"><section class="card"><h1>${escapeHtml(title)} <span class="muted">admin</span></h1>
${wrong ? '<p class="error">That token is not the right one.</p>' : "<p>This dashboard needs its token.</p>"}
<form method="get" action="${escapeHtml(path)}" class="row"><input type="password" name="token" autocomplete="current-password" aria-label="Token" required><button type="submit">Open</button></form>
</section></main></body></html>
`;
}

const STYLE = `
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#5c6670;--line:#d6dbe0;--bg:#fff;--card:#f6f8fa;--accent:#0b6bcb;--b:#c2410c;--ok:#137333;--err:#b3261e}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ec;--muted:#9aa4ae;--line:#3a4148;--bg:#15181b;--card:#1e2226;--accent:#5ea8ff;--b:#fb923c;--ok:#6fcf87;--err:#ff8a80}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;gap:12px;align-items:center;padding:10px 16px;border-bottom:1px solid var(--line)}
h1{font-size:18px;margin:0;flex:1}h2{font-size:14px;margin:0 0 6px}
main{padding:12px 16px;display:grid;gap:12px}.narrow{max-width:420px;margin:40px auto}
.numbers{display:grid;grid-template-columns:repeat(6,minmax(0,1fr));gap:12px}.numbers strong{display:block;font-size:24px;font-variant-numeric:tabular-nums}
.plots,.two{display:grid;grid-template-columns:1fr 1fr;gap:12px}@media (max-width:900px){.numbers{grid-template-columns:repeat(3,1fr)}.plots,.two{grid-template-columns:1fr}}
.card{border:1px solid var(--line);border-radius:8px;background:var(--card);padding:10px 12px;min-width:0}.label{font-size:12px;color:var(--muted)}
.muted{color:var(--muted);font-weight:normal}.error{color:var(--err)}.ok{color:var(--ok)}#totals{margin:0}
.status{font-size:12px;padding:2px 8px;border-radius:10px;border:1px solid var(--line)}.status.open{color:var(--ok)}.status.closed{color:var(--err)}
svg{width:100%;height:120px;display:block}svg polyline{fill:none;stroke-width:2;vector-effect:non-scaling-stroke}svg .a{stroke:var(--accent)}svg .b{stroke:var(--b)}svg text{fill:var(--muted);font-size:11px}
.key{font-size:12px;font-weight:normal}.key.a{color:var(--accent)}.key.b{color:var(--b)}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}th,td{text-align:left;padding:3px 6px;border-bottom:1px solid var(--line);white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:280px}th{font-size:12px;color:var(--muted);font-weight:normal}
.row{display:flex;gap:8px;align-items:center;flex-wrap:wrap;margin:8px 0}
input,textarea{font:inherit;color:inherit;background:var(--bg);border:1px solid var(--line);border-radius:4px;padding:3px 6px}textarea{min-width:320px;height:48px;font-family:ui-monospace,monospace}
button{font:inherit;padding:3px 12px;border-radius:4px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer}button.secondary{background:transparent;color:var(--accent)}button.small{padding:0 8px;font-size:12px}
.confirm[hidden]{display:none}.confirm{display:flex;gap:8px;align-items:center;padding:8px;border:1px solid var(--b);border-radius:6px}
.log{list-style:none;margin:0;padding:0;font-family:ui-monospace,monospace;font-size:12px;max-height:160px;overflow:auto}
`;
