/**
 * The status page at `/` of an index's HTTP port: plain HTML and CSS, no build step. Its
 * scripts are served apart (`/common.js`, `/index.js`) so the Content-Security-Policy can
 * forbid inline scripts; every name is put in the page with textContent, never as HTML.
 */
import { pageHtml } from './page-common.js';

export const INDEX_PAGE = pageHtml(
  'peerdex index',
  `  .figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(120px, 1fr)); gap: 10px; }
  .figure { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
  .figure .value { font-size: 20px; font-variant-numeric: tabular-nums; }
  .figure .label { color: var(--muted); font-size: 12px; }
  td.holders { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
  #more { margin-top: 8px; display: none; }
`,
  `<header>
  <h1>peerdex index</h1>
  <span class="facts" id="facts">connecting...</span>
  <span class="facts" id="cluster"></span>
</header>
<main>
  <section>
    <h2>Counters <span class="count" id="updated"></span></h2>
    <div class="figures" id="figures"></div>
  </section>
  <section>
    <h2>Content <span class="count" id="content-count"></span></h2>
    <form id="search-form">
      <input type="search" id="search-input" placeholder="a name, part of one, or a glob like *.iso" autocomplete="off">
      <button type="submit" id="search-button">Search</button>
    </form>
    <p id="message" role="status"></p>
    <table id="content"><thead><tr><th>Name</th><th>Holders (address:port, SHA-256)</th></tr></thead><tbody></tbody></table>
    <button type="button" class="secondary" id="more">More</button>
  </section>
  <section>
    <h2>Content servers <span class="count" id="servers-count"></span></h2>
    <table id="servers"><thead><tr><th>Server</th><th class="num">Names</th></tr></thead><tbody></tbody></table>
  </section>
</main>
`,
  '/index.js',
);
