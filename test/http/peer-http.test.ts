/**
 * The peer's HTTP surface over real sockets: health, metrics (exact counters), status, the
 * download API (start, bad input, cancel keeping partial data), the index search, and the
 * safety rules (tokens, non-loopback binds, Host checks, no HTML from names).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PeerHttpServer } from '../../src/http/peer-http.js';
import { RateLimiter } from '../../src/peer/rate-limiter.js';
import { binaryContent, Fixtures, MiB, sha256Text, waitFor } from '../helpers/peer-fixtures.js';
import { metric, postJson, scrape, status, swarm, type Swarm } from './http-fixtures.js';

const fx = new Fixtures();
afterEach(() => fx.cleanup());
let s: Swarm;
beforeEach(async () => {
  s = await swarm(fx);
});

const METRICS = ['peerdex_peer_bytes_sent_total', 'peerdex_peer_bytes_received_total', 'peerdex_peer_uploads_active', 'peerdex_peer_downloads_active', 'peerdex_peer_shared_files'];

it('answers /healthz, and /metrics with the peer metrics and the process defaults', async () => {
  const peer = await s.peer({ 'a.txt': 'aaa', 'b.txt': 'bb' });
  const { base } = await s.http(peer);
  const health = await fetch(`${base}/healthz`);
  expect(health.status).toBe(200);
  const res = await fetch(`${base}/metrics`);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  const text = await res.text();
  for (const name of METRICS) expect(metric(text, name), name).toBeDefined();
  expect(text).toMatch(/^# TYPE peerdex_peer_bytes_sent_total counter$/m);
  expect(text).toMatch(/^process_cpu_user_seconds_total /m);
  expect(metric(text, 'peerdex_peer_shared_files')).toBe(2);
});

it("counts exactly: a download of N bytes from this peer adds N to bytes_sent, and N to the downloader's bytes_received", async () => {
  const body = binaryContent(3 * MiB + 17, 3);
  const seed = await s.peer({ 'film.bin': body });
  const seedHttp = await s.http(seed);
  const peer = await s.peer();
  const peerHttp = await s.http(peer);
  const sentBefore = metric(await scrape(seedHttp.base), 'peerdex_peer_bytes_sent_total')!;
  const receivedBefore = metric(await scrape(peerHttp.base), 'peerdex_peer_bytes_received_total')!;

  await peer.download('film.bin');
  expect(metric(await scrape(seedHttp.base), 'peerdex_peer_bytes_sent_total')! - sentBefore).toBe(body.length);
  const after = await scrape(peerHttp.base);
  expect(metric(after, 'peerdex_peer_bytes_received_total')! - receivedBefore).toBe(body.length);
  expect(metric(after, 'peerdex_peer_shared_files')).toBe(1);
  expect(metric(after, 'peerdex_peer_downloads_active')).toBe(0);
  expect((await status(seedHttp.base)).totals.bytesSent).toBe(body.length);
});

it('POST /api/downloads starts a download: 201 with its id; the file is then shared and registered by this peer', async () => {
  const body = binaryContent(MiB + 3, 5);
  const seed = await s.peer({ 'x.bin': body });
  const peer = await s.peer();
  const { base } = await s.http(peer);
  const res = await postJson(`${base}/api/downloads`, { name: 'x.bin' });
  expect(res.status).toBe(201);
  const { id, name } = (await res.json()) as { id: number; name: string };
  expect(name).toBe('x.bin');
  expect(id).toBeGreaterThan(0);
  const st = await waitFor(
    async () => {
      const st = await status(base);
      return st.shared.some((f) => f.name === 'x.bin') && st.downloads.recent.some((d) => d.id === id && d.state === 'done') ? st : undefined;
    },
    10_000,
    'the download to finish',
  );
  expect(st.shared).toEqual([{ name: 'x.bin', size: body.length, sha256: sha256Text(body) }]);
  expect((await s.holdersOf('x.bin')).sort()).toEqual([seed.port, peer.port].sort());
  expect((await readFile(join(peer.dir, 'x.bin'))).equals(body)).toBe(true);
});

it('POST /api/downloads with {"match": GLOB} starts one download per matching name not here yet', async () => {
  await s.peer({ 'a.iso': 'A', 'b.iso': 'B', 'c.txt': 'C' });
  const peer = await s.peer({ 'b.iso': 'B' });
  const { base } = await s.http(peer);
  const res = await postJson(`${base}/api/downloads`, { match: '*.iso' });
  expect(res.status).toBe(201);
  const body = (await res.json()) as { downloads: { id: number; name: string }[]; alreadyHere: number };
  expect(body.downloads.map((d) => d.name)).toEqual(['a.iso']);
  expect(body.alreadyHere).toBe(1);
  const none = await postJson(`${base}/api/downloads`, { match: '*.zip' });
  expect(none.status).toBe(404);
  expect(((await none.json()) as { error: string }).error).toMatch(/no name in index .* matches "\*\.zip"/);
});

describe('bad requests get a 4xx and one clear message', () => {
  const cases: [string, string | object, number, RegExp][] = [
    ['not JSON', '{"name": ', 400, /not valid JSON/],
    ['an array', '[]', 400, /JSON object/],
    ['no field', {}, 400, /exactly one of/],
    ['both fields', { name: 'a', match: '*' }, 400, /exactly one of/],
    ['a number', { name: 7 }, 400, /"name" must be a string/],
    ['a slash', { name: 'a/b' }, 400, /cannot download "a\/b": name may not contain "\/"/],
    ['too long', { name: 'x'.repeat(26) }, 400, /26 bytes, the limit is 25/],
    ['an unknown field', { name: 'a', force: true }, 400, /unknown field/],
  ];
  it.each(cases)('%s', async (_what, body, code, message) => {
    const { base } = await s.http(await s.peer());
    const res = await postJson(`${base}/api/downloads`, body);
    expect(res.status).toBe(code);
    expect(((await res.json()) as { error: string }).error).toMatch(message);
  });

  it('a body that is not JSON-typed (415), unknown paths (404) and methods (405)', async () => {
    const { base } = await s.http(await s.peer());
    expect((await fetch(`${base}/api/downloads`, { method: 'POST', body: '{"name":"a"}', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/api/status`, { method: 'PUT' })).status).toBe(405);
    expect((await fetch(`${base}/api/downloads/abc`, { method: 'DELETE' })).status).toBe(400);
    expect((await fetch(`${base}/api/downloads/999`, { method: 'DELETE' })).status).toBe(404);
  });
});

it('DELETE /api/downloads/ID cancels one, keeping its partial data; a second POST of a running name is 409', async () => {
  const limiter = new RateLimiter({ bytesPerSecond: MiB });
  fx.track(() => limiter.close());
  await s.peer({ 'slow.bin': binaryContent(4 * MiB, 9) }, { uploadLimiter: limiter });
  const peer = await s.peer();
  const { base } = await s.http(peer);
  const { id } = (await (await postJson(`${base}/api/downloads`, { name: 'slow.bin' })).json()) as { id: number };
  expect((await postJson(`${base}/api/downloads`, { name: 'slow.bin' })).status).toBe(409);
  await waitFor(async () => (await status(base)).downloads.active.find((d) => d.id === id && d.received >= 2 * 256 * 1024), 10_000, 'two pieces to arrive');
  const res = await fetch(`${base}/api/downloads/${id}`, { method: 'DELETE' });
  expect(res.status).toBe(200);
  const ended = await waitFor(async () => (await status(base)).downloads.recent.find((d) => d.id === id), 5000, 'the cancel');
  expect(ended.state).toBe('cancelled');
  expect(existsSync(join(peer.dir, '.peerdex-slow.bin.part'))).toBe(true);
  expect(existsSync(join(peer.dir, 'slow.bin'))).toBe(false);
});

it('GET /api/index/search finds names of the index listing with their holders', async () => {
  const seed = await s.peer({ 'report.pdf': 'r', 'Report2.PDF': 'R', 'other.txt': 'o' });
  const peer = await s.peer({ 'report.pdf': 'r' });
  const { base } = await s.http(peer);
  type Search = { results: { name: string; holders: { port: number }[]; sharedHere: boolean }[]; total: number };
  const byGlob = (await (await fetch(`${base}/api/index/search?match=${encodeURIComponent('*.pdf')}`)).json()) as Search;
  expect(byGlob.results.map((r) => r.name)).toEqual(['report.pdf']);
  expect(byGlob.results[0].holders.map((h) => h.port).sort()).toEqual([seed.port, peer.port].sort());
  expect(byGlob.results[0].sharedHere).toBe(true);
  const byText = (await (await fetch(`${base}/api/index/search?contains=REPORT`)).json()) as Search;
  expect(byText.results.map((r) => r.name)).toEqual(['Report2.PDF', 'report.pdf']);
  expect(((await (await fetch(`${base}/api/index/search`)).json()) as Search).total).toBe(3);
});

describe('safety', () => {
  it('refuses to listen on a non-loopback address without a token', async () => {
    const peer = await s.peer();
    await expect(PeerHttpServer.listen({ peer, host: '0.0.0.0', port: 0 })).rejects.toMatchObject({ code: 'ERR_USAGE', message: expect.stringMatching(/--http-token/) });
    await expect(PeerHttpServer.listen({ peer, port: 0, token: '' })).rejects.toMatchObject({ code: 'ERR_USAGE' });
  });

  it('with a token, POST and DELETE need it (401 without or wrong); GETs do not', async () => {
    await s.peer({ 'a.txt': 'a' });
    const peer = await s.peer();
    const { base } = await s.http(peer, { host: '0.0.0.0', token: 's3cret' });
    expect((await postJson(`${base}/api/downloads`, { name: 'a.txt' })).status).toBe(401);
    expect((await postJson(`${base}/api/downloads`, { name: 'a.txt' }, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await fetch(`${base}/api/downloads/1`, { method: 'DELETE' })).status).toBe(401);
    expect(peer.activeDownloads).toBe(0);
    expect((await fetch(`${base}/api/status`)).status).toBe(200);
    expect((await status(base)).peer.authRequired).toBe(true);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
    const ok = await postJson(`${base}/api/downloads`, { name: 'a.txt' }, { authorization: 'Bearer s3cret' });
    expect(ok.status).toBe(201);
  });

  it('bound to loopback, answers only requests addressed to a loopback host (no DNS rebinding)', async () => {
    const { server } = await s.http(await s.peer());
    const port = server.address().port;
    const { request } = await import('node:http');
    const get = (host: string) =>
      new Promise<number>((resolve, reject) =>
        request({ host: '127.0.0.1', port, path: '/api/status', headers: { host } }, (res) => (res.resume(), resolve(res.statusCode!)))
          .on('error', reject)
          .end(),
      );
    expect(await get('evil.example:80')).toBe(403);
    expect(await get(`localhost:${port}`)).toBe(200);
    expect(await get(`[::1]:${port}`)).toBe(200);
  });

  it('the page holds no data and forbids inline scripts; names only travel as JSON', async () => {
    await s.peer({ '<svg onload=alert(1)>': 'x' });
    const peer = await s.peer();
    const { base } = await s.http(peer);
    const page = await fetch(`${base}/`);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self';/);
    expect(await page.text()).not.toMatch(/svg/);
    const script = await (await fetch(`${base}/peer.js`)).text();
    expect(script).not.toMatch(/innerHTML|insertAdjacentHTML|outerHTML|document\.write/);
    const found = await (await fetch(`${base}/api/index/search?contains=svg`)).json();
    expect(found).toMatchObject({ results: [{ name: '<svg onload=alert(1)>' }] });
  });
});
