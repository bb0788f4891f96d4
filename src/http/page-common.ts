/**
 * What the two pages (a peer's, the index's) share: the style sheet, and the script served
 * as `/common.js` before each page's own: `$`, element builders that put every value in the
 * page as text (textContent), never as HTML, and byte sizes for people.
 */
export const PAGE_STYLE = `  :root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --accent: #2f6fde; --bg: #f7f8fa; --ok: #1a7f37; --bad: #c4320a; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
  header { background: #1d2330; color: #fff; padding: 14px 24px; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
  header h1 { margin: 0; font-size: 18px; }
  header .facts { color: #c7cbd4; font-size: 13px; }
  main { max-width: 1100px; margin: 0 auto; padding: 16px 24px 40px; display: grid; gap: 16px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
  h2 { margin: 0 0 10px; font-size: 15px; }
  h2 .count { color: var(--muted); font-weight: normal; }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: left; padding: 6px 8px; border-top: 1px solid var(--line); vertical-align: middle; }
  th { color: var(--muted); font-weight: 600; font-size: 12px; border-top: none; }
  td.name { font-family: ui-monospace, Menlo, Consolas, monospace; word-break: break-all; }
  td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
  .muted, .empty { color: var(--muted); }
  form { display: flex; gap: 8px; margin-bottom: 10px; }
  input[type=search], input[type=password] { flex: 1; padding: 7px 10px; border: 1px solid var(--line); border-radius: 6px; font: inherit; }
  button { padding: 6px 12px; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 6px; font: inherit; cursor: pointer; }
  button.secondary { background: #fff; color: var(--accent); }
  button:disabled { background: #eef0f3; border-color: var(--line); color: var(--muted); cursor: default; }
  #message { min-height: 1.4em; color: var(--bad); margin: 0; }
  .grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
  @media (max-width: 800px) { .grid2 { grid-template-columns: 1fr; } }`;

export const PAGE_COMMON_SCRIPT = `'use strict';
const $ = (id) => document.getElementById(id);
function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}
function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) tr.appendChild(c);
  return tr;
}
function fill(tableId, rows, emptyText, columns) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren(...rows);
  if (rows.length === 0) {
    const td = el('td', emptyText, 'empty');
    td.colSpan = columns;
    body.appendChild(row([td]));
  }
}
function bytes(n) {
  if (n < 1024) return n + ' B';
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return v.toFixed(v < 10 ? 1 : 0) + ' ' + units[i];
}
`;

/** A whole page: the shared style plus `style`, then `body`, then /common.js and `script`. */
export const pageHtml = (title: string, style: string, body: string, script: string): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>
${PAGE_STYLE}
${style}</style>
</head>
<body>
${body}<script src="/common.js"></script>
<script src="${script}"></script>
</body>
</html>
`;
