/**
 * The script of the index's page (served as `/index.js`): every 2 seconds it reads
 * `/api/stats`, the servers and the content pages shown, and redraws them; the search box
 * asks `/api/content` (a glob, or else a piece of the name). Every value from the server goes
 * into the page through textContent, never as HTML.
 */
export const INDEX_PAGE_SCRIPT = `'use strict';
const REFRESH_MS = 2000;
let query = '';
/** How many content pages are shown (More adds one); each refresh reloads them all. */
let pages = 1;

async function get(path) {
  const res = await fetch(path);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || ('GET ' + path + ': HTTP ' + res.status));
  return data;
}
function hostPort(h) { return (h.addr.includes(':') ? '[' + h.addr + ']' : h.addr) + ':' + h.port; }
function figure(label, value) {
  const box = el('div', undefined, 'figure');
  box.append(el('div', value.toLocaleString('en'), 'value'), el('div', label, 'label'));
  return box;
}

function renderStats(s) {
  $('facts').textContent = 'udp ' + s.index.udp + ' \\u00b7 up ' + s.uptimeSeconds + ' s';
  $('cluster').textContent = s.index.cluster ? 'cluster: ' + s.index.cluster.redis + ' prefix ' + s.index.cluster.prefix : 'standalone (no --redis)';
  const figures = [['registrations', s.registrations], ['names', s.names], ['servers', s.servers]];
  for (const t of Object.keys(s.requests)) figures.push([t + ' requests', s.requests[t]]);
  for (const c of Object.keys(s.refusals)) figures.push(['E ' + c + ' refusals', s.refusals[c]]);
  figures.push(['dropped', s.dropped], ['replies', s.replies]);
  $('figures').replaceChildren(...figures.map(([label, value]) => figure(label, value)));
  $('updated').textContent = '(updated ' + new Date().toLocaleTimeString() + ')';
}

function contentQuery() {
  if (query === '') return '';
  return /[*?[\\]{}]/.test(query) ? 'match=' + encodeURIComponent(query) : 'contains=' + encodeURIComponent(query);
}

async function loadContent() {
  const names = [];
  let after = '';
  let more = false;
  for (let i = 0; i < pages; i++) {
    const page = await get('/api/content?limit=100&' + contentQuery() + (after ? '&after=' + encodeURIComponent(after) : ''));
    names.push(...page.names);
    more = page.next !== undefined;
    if (!more) break;
    after = page.next;
  }
  $('content-count').textContent = '(' + names.length + (more ? '+' : '') + (query ? ' matching' : '') + ')';
  $('more').style.display = more ? 'inline-block' : 'none';
  fill('content', names.map((n) => {
    const holders = el('td', undefined, 'holders');
    for (const h of n.holders) holders.append(el('div', hostPort(h) + (h.sha256 ? '  ' + h.sha256.slice(0, 12) + '\\u2026' : '')));
    return row([el('td', n.name, 'name'), holders]);
  }), query ? 'no name matches' : 'nothing registered yet', 2);
}

async function loadServers() {
  const r = await get('/api/servers?limit=200');
  $('servers-count').textContent = '(' + r.total + ')';
  fill('servers', r.servers.map((s) => row([el('td', hostPort(s), 'name'), el('td', s.names, 'num')])), 'no content server registered', 2);
}

async function refresh() {
  try {
    renderStats(await get('/api/stats'));
    await Promise.all([loadContent(), loadServers()]);
    $('message').textContent = '';
  } catch (e) {
    $('message').textContent = 'cannot reach this index: ' + e.message;
  }
}

async function poll() {
  await refresh();
  setTimeout(poll, REFRESH_MS);
}

$('search-form').addEventListener('submit', (event) => {
  event.preventDefault();
  query = $('search-input').value.trim();
  pages = 1;
  void refresh();
});
$('more').addEventListener('click', () => {
  pages++;
  void loadContent();
});
poll();
`;
