/**
 * The script of the peer's page (served as `/peer.js`): polls `/api/status` every second and
 * redraws the tables; searches `/api/index/search`; starts and cancels downloads. Every value
 * from the server goes into the page through textContent or a property, never as HTML.
 */
export const PEER_PAGE_SCRIPT = `'use strict';
let token = sessionStorage.getItem('peerdex-token') || '';
let sharedNames = new Set();
let busyNames = new Set();
/** The Download button of each search result, kept in step with the status. */
let resultButtons = new Map();

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? s + ' s' : Math.floor(s / 60) + ' min';
}
function say(text) { $('message').textContent = text || ''; }

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers['authorization'] = 'Bearer ' + token;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || (method + ' ' + path + ': HTTP ' + res.status));
  return data;
}

function renderStatus(s) {
  $('facts').textContent = 'content port ' + s.peer.port + ' \\u00b7 folder ' + s.peer.dir + ' \\u00b7 index ' + s.peer.index +
    ' \\u00b7 sent ' + bytes(s.totals.bytesSent) + ' \\u00b7 received ' + bytes(s.totals.bytesReceived);
  $('auth').style.display = s.peer.authRequired && !token ? 'block' : 'none';
  sharedNames = new Set(s.shared.map((f) => f.name));
  $('shared-count').textContent = '(' + s.shared.length + ')';
  fill('shared', s.shared.map((f) => row([el('td', f.name, 'name'), el('td', bytes(f.size), 'num'), el('td', f.sha256.slice(0, 12) + '\\u2026', 'muted')])), 'nothing shared yet', 3);
  const all = s.downloads.active.concat(s.downloads.recent);
  busyNames = new Set(s.downloads.active.map((d) => d.name));
  $('downloads-count').textContent = '(' + s.downloads.active.length + ' active)';
  fill('downloads', all.map(downloadRow), 'no downloads yet: search the index and press Download', 7);
  for (const [name, b] of resultButtons) setButton(b, name, false);
  $('uploads-count').textContent = '(' + s.uploads.length + ')';
  fill('uploads', s.uploads.map((u) => row([el('td', u.name, 'name'), el('td', u.remote), el('td', bytes(u.size), 'num'), el('td', ago(u.startedAt), 'num')])), 'no uploads right now', 4);
}

function downloadRow(d) {
  const bar = document.createElement('progress');
  bar.max = d.total || 1;
  bar.value = d.state === 'done' ? bar.max : d.received;
  const state = el('td', d.state, 'state-' + d.state);
  if (d.error) state.title = d.error;
  const action = el('td');
  if (d.state === 'queued' || d.state === 'running') {
    const b = el('button', 'Cancel', 'secondary');
    b.addEventListener('click', () => api('DELETE', '/api/downloads/' + d.id).catch((e) => say(e.message)));
    action.appendChild(b);
  } else if (d.error) {
    action.appendChild(el('span', d.error, 'muted'));
  }
  return row([el('td', d.name, 'name'), state, el('td').appendChild(bar).parentNode, el('td', bytes(d.received) + ' / ' + (d.total ? bytes(d.total) : '?'), 'num'),
    el('td', d.state === 'running' ? bytes(d.speed) + '/s' : '', 'num'), el('td', d.holders.length || '', 'num'), action]);
}

async function poll() {
  try {
    renderStatus(await api('GET', '/api/status'));
  } catch (e) {
    $('facts').textContent = 'cannot reach this peer: ' + e.message;
  }
  setTimeout(poll, 1000);
}

async function search(event) {
  if (event) event.preventDefault();
  const text = $('search-input').value.trim();
  const query = /[*?[\\]{}]/.test(text) ? 'match=' + encodeURIComponent(text) : 'contains=' + encodeURIComponent(text);
  say('searching...');
  try {
    const r = await api('GET', '/api/index/search?' + query);
    say(r.truncated ? 'showing ' + r.results.length + ' of ' + r.total + ' names' : r.total === 0 ? 'no name in the index matches' : '');
    resultButtons = new Map();
    fill('results', r.results.map(resultRow), 'no results', 3);
  } catch (e) {
    say(e.message);
  }
}

function setButton(b, name, here) {
  here = here || sharedNames.has(name);
  const busy = busyNames.has(name) || b.dataset.pending === 'yes';
  b.disabled = here || busy;
  b.textContent = here ? 'Shared here' : busy ? 'Downloading' : 'Download';
}

function resultRow(r) {
  const b = el('button', 'Download');
  if (r.downloading) busyNames.add(r.name);
  setButton(b, r.name, r.sharedHere);
  resultButtons.set(r.name, b);
  b.addEventListener('click', async () => {
    b.dataset.pending = 'yes';
    setButton(b, r.name, false);
    try {
      await api('POST', '/api/downloads', { name: r.name });
      busyNames.add(r.name);
      say('');
    } catch (e) {
      say(e.message);
    }
    b.dataset.pending = '';
    setButton(b, r.name, false);
  });
  const holders = r.holders.map((h) => (h.addr.includes(':') ? '[' + h.addr + ']' : h.addr) + ':' + h.port).join(', ');
  return row([el('td', r.name, 'name'), el('td', holders, 'muted'), el('td').appendChild(b).parentNode]);
}

$('search-form').addEventListener('submit', search);
$('auth-form').addEventListener('submit', (event) => {
  event.preventDefault();
  token = $('token').value;
  sessionStorage.setItem('peerdex-token', token);
  $('auth').style.display = 'none';
});
poll();
`;
