/**
 * The report file: one HTML page with its styles, script and data inlined, so it can be attached
 * to a ticket and opened anywhere, offline. The Content-Security-Policy forbids any fetch (the
 * page needs none), so a stray request fails loudly instead of reaching the network.
 */
import type { EncodedReport } from './encode';

/** JSON safe inside a <script> element: no "</script" or "<!--" can end it early. */
function jsonText(s: string): string {
  return s.replace(/</g, '\\u003c');
}

/** Code safe inside a <script> element (esbuild already escapes "</script" in strings; this is a guard). */
function codeText(s: string): string {
  return s.replace(/<\/script/gi, '<\\/script');
}

const CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; connect-src data: blob:";

const PAGE_STYLES = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d232a; background: #f6f7f9; }
header { background: #1d2b3a; color: #fff; padding: 12px 24px; }
header h1 { font-size: 20px; margin: 0; }
header .sub { opacity: .8; font-size: 13px; }
main { padding: 12px 24px 48px; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 12px 16px; margin: 12px 0; }
h2 { font-size: 16px; margin: 0 0 8px; }
table.kv { border-collapse: collapse; margin: 4px 16px 8px 0; display: inline-table; vertical-align: top; }
table.kv td, table.kv th { padding: 2px 8px; text-align: left; border-bottom: 1px solid #eef0f2; }
table.kv td.n, td.n { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 12px; }
.chart h3 { font-size: 14px; margin: 4px 0; }
.matrix td { min-width: 48px; text-align: right; padding: 2px 6px; font-variant-numeric: tabular-nums; }
.matrix th { font-weight: 600; padding: 2px 6px; font-size: 12px; }
.filters { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-bottom: 8px; }
.filters label { font-size: 12px; }
.flowgrid { height: 420px; overflow-y: auto; border: 1px solid #dde1e6; position: relative; font: 12px/1 ui-monospace, monospace; }
.flowrow, .flowhead { display: grid; grid-template-columns: 70px 50px 110px 1fr 1fr 100px 110px 150px 80px 90px; height: 22px; align-items: center; white-space: nowrap; }
.flowrow > span, .flowhead > span { overflow: hidden; text-overflow: ellipsis; padding: 0 4px; }
.flowhead { font: 600 12px system-ui, sans-serif; background: #eef1f4; cursor: pointer; border: 1px solid #dde1e6; border-bottom: 0; }
.flowrow { position: absolute; left: 0; right: 0; cursor: pointer; border-bottom: 1px solid #f0f2f4; }
.flowrow:hover { background: #eef5ff; }
.flowrow.selected { background: #d7e8ff; }
#story table, .list table { border-collapse: collapse; font: 12px ui-monospace, monospace; }
#story td, #story th, .list td, .list th { padding: 2px 6px; border-bottom: 1px solid #eef0f2; text-align: left; vertical-align: top; white-space: nowrap; }
#story td.wrap, .list td.wrap { white-space: normal; min-width: 320px; overflow-wrap: anywhere; }
.v-NEW { color: #1f6feb; } .v-ESTABLISHED { color: #1a7f37; } .v-RELATED { color: #8250df; } .v-INVALID { color: #cf222e; font-weight: 600; } .v-UNTRACKED { color: #6e7781; }
.muted { color: #6e7781; }
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.bad { color: #cf222e; }
`;

export function reportHtml(report: EncodedReport, script: string): string {
  const title = `ctflow report: ${report.meta.capture.name}`;
  const esc = (s: string): string => s.replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${PAGE_STYLES}</style>
</head>
<body>
<header><h1>${esc(title)}</h1><div class="sub" id="subtitle"></div></header>
<main id="report"><p id="loading">Loading the report's data…</p></main>
<script type="application/json" id="ctflow-meta">${jsonText(JSON.stringify(report.meta))}</script>
<script type="application/octet-stream" id="ctflow-columns">${report.columnsBase64}</script>
<script>${codeText(script)}</script>
</body>
</html>
`;
}
