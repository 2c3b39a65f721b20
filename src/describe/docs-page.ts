// The live docs page (`/docs`): one HTML document with its style and script inside, so it
// works offline and needs nothing but the server that serves it. It reads the app's
// AsyncAPI document, lists the actions and channels with their schemas and examples, and is
// a console: it opens a WebSocket to the same server, calls actions with an input made from
// their schema, subscribes to channels, and shows every frame that goes and comes.
import { PAGE_SCRIPT } from "./docs-page-script.generated.ts";

/** What the page is told by the server: its title, where the document is, the socket's path. */
export interface DocsPageConfig {
  title: string;
  asyncapi: string;
  socket: string;
}

/** The page, for `config`. */
export function docsPage(config: DocsPageConfig): string {
  // `<` escaped: the configuration cannot close the script element it sits in.
  const json = JSON.stringify(config).replace(/</g, "\\u003c");
  const title = config.title.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · docs</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>${title}</h1><span id="status" class="status">connecting…</span><label class="query"><span>query</span><input id="query" type="text" placeholder="token=…" autocomplete="off" spellcheck="false" aria-label="The socket's query"></label><button id="reconnect" type="button">Reconnect</button></header>
<main><section id="api" aria-label="Actions and channels"><p class="muted">Loading the API…</p></section>
<aside aria-label="Frames"><div class="log-head"><h2>Frames</h2><button id="clear" type="button">Clear</button></div><ol id="log"></ol></aside></main>
<script type="application/json" id="config">${json}</script>
<script>${PAGE_SCRIPT}
pageScript(JSON.parse(document.getElementById("config").textContent));</script>
</body>
</html>
`;
}

const STYLE = `
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#5c6670;--line:#d6dbe0;--bg:#fff;--card:#f6f8fa;--accent:#0b6bcb;--ok:#137333;--err:#b3261e}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ec;--muted:#9aa4ae;--line:#3a4148;--bg:#15181b;--card:#1e2226;--accent:#5ea8ff;--ok:#6fcf87;--err:#ff8a80}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;gap:12px;align-items:center;padding:10px 16px;border-bottom:1px solid var(--line)}
h1{font-size:18px;margin:0;flex:1}h2{font-size:15px;margin:0}h3{font-size:14px;margin:0;font-family:ui-monospace,monospace}
main{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:16px;padding:16px}
@media (max-width:900px){main{grid-template-columns:1fr}}
.status{font-size:12px;padding:2px 8px;border-radius:10px;border:1px solid var(--line)}.status.open{color:var(--ok)}.status.closed{color:var(--err)}
.card{border:1px solid var(--line);border-radius:8px;background:var(--card);padding:12px;margin-bottom:12px}
.card header{padding:0;border:0;margin-bottom:6px}.kind{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.muted{color:var(--muted)}.desc{margin:4px 0 8px}
label{display:flex;gap:8px;align-items:center;margin:4px 0}label span{min-width:90px;font-family:ui-monospace,monospace}
label.query span{min-width:0;color:var(--muted)}label.query input{width:14em}
input,select,textarea{font:inherit;color:inherit;background:var(--bg);border:1px solid var(--line);border-radius:4px;padding:3px 6px}
textarea{width:100%;min-height:64px;font-family:ui-monospace,monospace}
button{font:inherit;padding:3px 12px;border-radius:4px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer}
button.secondary{background:transparent;color:var(--accent)}button:disabled{opacity:.5;cursor:default}
.row{display:flex;gap:8px;align-items:center;flex-wrap:wrap;margin-top:6px}
.result,.feed{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-word;margin-top:6px;font-size:13px}
.result.ok{color:var(--ok)}.result.error{color:var(--err)}.feed{max-height:180px;overflow:auto}
details{margin-top:6px}summary{cursor:pointer;color:var(--muted)}pre{margin:4px 0;font-size:12px;overflow:auto}
aside{position:sticky;top:8px;align-self:start}.log-head{display:flex;justify-content:space-between;align-items:center;margin-bottom:6px}
#log{list-style:none;margin:0;padding:0;max-height:calc(100vh - 120px);overflow:auto;font-family:ui-monospace,monospace;font-size:12px}
#log li{padding:3px 6px;border-bottom:1px solid var(--line);word-break:break-word}#log .out::before{content:"→ ";color:var(--accent)}#log .in::before{content:"← ";color:var(--ok)}
#log .error{color:var(--err)}#log time{color:var(--muted);margin-right:6px}
`;
