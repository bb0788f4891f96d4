/**
 * The page for people at `/` of a peer's HTTP port: plain HTML and CSS, no build step. Its
 * script is served apart (`/peer.js`, peer-page-script.ts) so the Content-Security-Policy can
 * forbid inline scripts: even a name that slipped into the page as HTML could run nothing.
 * Every name is put in the page by the script with textContent, never as HTML.
 */
export const PEER_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>peerdex peer</title>
<style>
  :root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --accent: #2f6fde; --bg: #f7f8fa; --ok: #1a7f37; --bad: #c4320a; }
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
  progress { width: 140px; vertical-align: middle; }
  .state-done { color: var(--ok); } .state-failed, .state-cancelled { color: var(--bad); }
  #message { min-height: 1.4em; color: var(--bad); margin: 0; }
  #auth { display: none; }
  .grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
  @media (max-width: 800px) { .grid2 { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<header>
  <h1>peerdex peer</h1>
  <span class="facts" id="facts">connecting...</span>
</header>
<main>
  <section id="auth">
    <h2>Token</h2>
    <form id="auth-form"><input type="password" id="token" placeholder="--http-token of this peer (needed to download and cancel)" autocomplete="off"><button type="submit">Use</button></form>
  </section>
  <section id="search-section">
    <h2>Search the index</h2>
    <form id="search-form">
      <input type="search" id="search-input" placeholder="a name, part of one, or a glob like *.iso" autocomplete="off">
      <button type="submit" id="search-button">Search</button>
    </form>
    <p id="message" role="status"></p>
    <table id="results"><thead><tr><th>Name</th><th>Holders</th><th></th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Downloads <span class="count" id="downloads-count"></span></h2>
    <table id="downloads"><thead><tr><th>Name</th><th>State</th><th>Progress</th><th class="num">Bytes</th><th class="num">Speed</th><th class="num">Holders</th><th></th></tr></thead><tbody></tbody></table>
  </section>
  <div class="grid2">
    <section>
      <h2>Shared here <span class="count" id="shared-count"></span></h2>
      <table id="shared"><thead><tr><th>Name</th><th class="num">Size</th><th>SHA-256</th></tr></thead><tbody></tbody></table>
    </section>
    <section>
      <h2>Uploads <span class="count" id="uploads-count"></span></h2>
      <table id="uploads"><thead><tr><th>Name</th><th>To</th><th class="num">Bytes</th><th class="num">Since</th></tr></thead><tbody></tbody></table>
    </section>
  </div>
</main>
<script src="/peer.js"></script>
</body>
</html>
`;
