/**
 * The page for people at `/` of a peer's HTTP port: plain HTML and CSS, no build step. Its
 * script is served apart (`/peer.js`, peer-page-script.ts) so the Content-Security-Policy can
 * forbid inline scripts: even a name that slipped into the page as HTML could run nothing.
 * Every name is put in the page by the script with textContent, never as HTML.
 */
import { pageHtml } from './page-common.js';

export const PEER_PAGE = pageHtml(
  'peerdex peer',
  `  progress { width: 140px; vertical-align: middle; }
  .state-done { color: var(--ok); } .state-failed, .state-cancelled { color: var(--bad); }
  #auth { display: none; }
`,
  `<header>
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
`,
  '/peer.js',
);
