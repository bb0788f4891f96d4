/**
 * The index's HTTP surface over real sockets: exact counters in /metrics and /api/stats,
 * content pages with their holders, the servers, health, the cluster label, and the safety
 * rules (loopback Host, GET only, no HTML from names).
 */
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { afterEach, expect, it } from 'vitest';
import { IndexHttpServer, type IndexHttpOptions } from '../../src/http/index-http.js';
import { contentPage, RegistryCensus, walkInSlices } from '../../src/http/index-census.js';
import { IndexServer, type IndexServerOptions } from '../../src/index/udp-server.js';
import { Registry } from '../../src/index/registry.js';
import { redisLabel } from '../../src/http/http-util.js';
import { UdpClient, pduText, rawPdu } from '../helpers/udp.js';
import { metric, scrape } from './http-fixtures.js';

const SHA = createHash('sha256').update('hello').digest('base64url');
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function index(options: IndexServerOptions = {}, extra: Partial<IndexHttpOptions> = {}) {
  const server = await IndexServer.listen({ port: 0, host: '127.0.0.1', ...options });
  closers.push(() => server.close());
  const web = await IndexHttpServer.listen({ server, port: 0, ...extra });
  closers.push(() => web.close());
  const c = await UdpClient.open();
  closers.push(async () => c.close());
  const port = server.address().port;
  const ask = async (type: string, data = '') => {
    const [reply] = await c.request(rawPdu(type, data), port);
    const { type: t, data: d } = pduText(reply);
    return `${t} ${d}`;
  };
  return { server, web, base: `http://127.0.0.1:${web.address().port}`, c, port, ask };
}

const labelled = (text: string, name: string, label: string, value: string) => metric(text, `${name}\\{${label}="${value}"\\}`);
const json = async (url: string) => (await fetch(url)).json() as Promise<any>;

it('counts exactly: K S requests grow the S counter by K; refusals by code, drops, and the live figures', async () => {
  const x = await index({ registerRate: 0 });
  expect(await x.ask('R', `9100;;hello.txt;${SHA}`)).toBe('A hello.txt');
  expect(await x.ask('R', '9100;;b.txt')).toBe('A b.txt');
  expect(await x.ask('R', '9101;;b.txt')).toBe('A b.txt');
  const before = await scrape(x.base);
  expect(labelled(before, 'peerdex_index_requests_total', 'type', 'R')).toBe(3);
  const K = 137;
  for (let i = 0; i < K; i++) expect(await x.ask('S', i % 2 ? 'hello.txt' : 'b.txt')).toMatch(/^S /);
  expect(await x.ask('S', 'missing.txt')).toMatch(/^E 3;/); // E 3
  expect(await x.ask('R', '0;;a')).toMatch(/^E 4;/); // E 4
  expect(await x.ask('R', '9100;10.9.9.9;a')).toMatch(/^E 5;/); // E 5
  expect(await x.ask('T', '9100;;nothing')).toMatch(/^E 3;/);
  await x.c.send(Buffer.from('hi'), x.port); // not a PDU: dropped
  await x.c.send(rawPdu('E', '1'), x.port); // a leave, nothing to answer
  await new Promise((r) => setTimeout(r, 50));
  const after = await scrape(x.base);
  const grew = (type: string) => labelled(after, 'peerdex_index_requests_total', 'type', type)! - (labelled(before, 'peerdex_index_requests_total', 'type', type) ?? 0);
  expect(grew('S')).toBe(K + 1);
  expect(grew('R')).toBe(2);
  expect(grew('T')).toBe(1);
  expect(grew('E')).toBe(1);
  expect(grew('O')).toBe(0);
  expect(labelled(after, 'peerdex_index_refusals_total', 'code', '3')).toBe(2);
  expect(labelled(after, 'peerdex_index_refusals_total', 'code', '4')).toBe(1);
  expect(labelled(after, 'peerdex_index_refusals_total', 'code', '5')).toBe(1);
  expect(labelled(after, 'peerdex_index_refusals_total', 'code', '6')).toBe(0);
  expect(metric(after, 'peerdex_index_dropped_total')).toBe(1);
  // The leave dropped every registration of this address.
  expect(metric(after, 'peerdex_index_registrations')).toBe(0);
  expect(after).toMatch(/^# TYPE peerdex_index_requests_total counter$/m);
  expect(after).toMatch(/^# TYPE peerdex_index_names gauge$/m);
  expect(after).toMatch(/^process_cpu_user_seconds_total /m);
});

it('/api/stats gives the same figures as one object, and /metrics the live registrations, names and servers', async () => {
  const x = await index({}, { cluster: { redis: 'redis://127.0.0.1:6379/2', prefix: 'test:' } });
  for (const [p, n] of [
    [9100, 'a.txt'],
    [9100, 'b.txt'],
    [9101, 'a.txt'],
  ] as const)
    expect(await x.ask('R', `${p};;${n}`)).toBe(`A ${n}`);
  expect(await x.ask('O')).toMatch(/^O /);
  const text = await scrape(x.base);
  expect(metric(text, 'peerdex_index_registrations')).toBe(3);
  expect(metric(text, 'peerdex_index_names')).toBe(2);
  expect(metric(text, 'peerdex_index_servers')).toBe(2);
  const stats = await json(`${x.base}/api/stats`);
  expect(stats).toMatchObject({
    index: { udp: `127.0.0.1:${x.port}`, cluster: { redis: 'redis://127.0.0.1:6379/2', prefix: 'test:' } },
    requests: { R: 3, S: 0, T: 0, O: 1, E: 0 },
    refusals: { 3: 0, 4: 0, 5: 0, 6: 0 },
    dropped: 0,
    registrations: 3,
    names: 2,
    servers: 2,
  });
  expect(await json(`${x.base}/api/servers`)).toEqual({
    total: 2,
    servers: [
      { addr: '127.0.0.1', port: 9100, names: 2 },
      { addr: '127.0.0.1', port: 9101, names: 1 },
    ],
  });
  expect((await fetch(`${x.base}/healthz`)).status).toBe(200);
});

it('/api/content lists names with their holders, by glob or piece of name, a page at a time (limit, after, next)', async () => {
  const x = await index();
  const names = Array.from({ length: 12 }, (_, i) => `file-${String(i).padStart(2, '0')}.bin`);
  for (const n of [...names].reverse()) expect(await x.ask('R', `9100;;${n};${SHA}`)).toBe(`A ${n}`);
  expect(await x.ask('R', '9101;;file-03.bin')).toBe('A file-03.bin');
  expect(await x.ask('R', '9100;;notes.txt')).toBe('A notes.txt');

  const first = await json(`${x.base}/api/content?match=*.bin&limit=5`);
  expect(first.names.map((n: { name: string }) => n.name)).toEqual(names.slice(0, 5));
  expect(first.next).toBe('file-04.bin');
  expect(first.names[3]).toEqual({
    name: 'file-03.bin',
    holders: [
      { addr: '127.0.0.1', port: 9100, sha256: SHA },
      { addr: '127.0.0.1', port: 9101 },
    ],
  });
  const seen = [...first.names];
  for (let after = first.next; after;) {
    const page = await json(`${x.base}/api/content?match=*.bin&limit=5&after=${encodeURIComponent(after)}`);
    seen.push(...page.names);
    after = page.next;
  }
  expect(seen.map((n) => n.name)).toEqual(names);
  expect((await json(`${x.base}/api/content?contains=NOTES`)).names.map((n: { name: string }) => n.name)).toEqual(['notes.txt']);
  expect((await json(`${x.base}/api/content`)).names).toHaveLength(13);
  const bad = await fetch(`${x.base}/api/content?limit=0`);
  expect(bad.status).toBe(400);
  expect((await bad.json()).error).toMatch(/limit must be a whole number from 1 to 1000/);
});

it('keeps to GET on loopback hosts, serves the page with a CSP, and names stay JSON text', async () => {
  const x = await index();
  const hostile = '<svg onload=alert(1)>';
  expect(await x.ask('R', `9100;;${hostile}`)).toBe(`A ${hostile}`);
  const page = await fetch(`${x.base}/`);
  expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
  expect(await page.text()).not.toContain(hostile);
  expect((await json(`${x.base}/api/content`)).names[0].name).toBe(hostile);
  expect((await fetch(`${x.base}/index.js`)).headers.get('content-type')).toMatch(/javascript/);
  expect((await fetch(`${x.base}/api/stats`, { method: 'POST' })).status).toBe(405);
  const withHost = (host: string) =>
    new Promise<number>((resolve, reject) =>
      request({ host: '127.0.0.1', port: x.web.address().port, path: '/api/stats', headers: { host } }, (res) => (res.resume(), resolve(res.statusCode!)))
        .on('error', reject)
        .end(),
    );
  expect(await withHost('evil.example:80')).toBe(403);
  expect(await withHost(`localhost:${x.web.address().port}`)).toBe(200);
  expect((await fetch(`${x.base}/nothing`)).status).toBe(404);
});

it('takes a census of a big registry in slices, and not again until it is cheap to', async () => {
  const registry = new Registry({ ttlMs: 60_000, maxPerSource: Infinity, maxPerPrefix: Infinity });
  const now = Date.now();
  for (let i = 0; i < 20_000; i++) registry.register({ addr: '10.0.0.1', port: 1000 + (i % 50), filename: `n${String(Math.floor(i / 4)).padStart(4, '0')}` }, '10.0.0.1', now);
  const census = new RegistryCensus(registry);
  expect(await census.current()).toEqual({ registrations: 20_000, names: 5000, servers: 50 });
  registry.register({ addr: '10.0.0.1', port: 1, filename: 'new' }, '10.0.0.1', now);
  const again = await census.current();
  expect(again.registrations === 20_000 || again.registrations === 20_001).toBe(true);
  let turns = 0;
  const ticking = setInterval(() => turns++, 0);
  await walkInSlices(
    Array.from({ length: 200_000 }, (_, i) => i),
    () => {
      for (let j = 0; j < 200; j++) Math.sqrt(j);
    },
  );
  clearInterval(ticking);
  expect(turns).toBeGreaterThan(0);
  const page = await contentPage(registry, () => true, 'n4998', 10, now);
  expect(page).toEqual({
    names: [
      { name: 'n4999', holders: [1046, 1047, 1048, 1049].map((port) => ({ addr: '10.0.0.1', port })) },
      { name: 'new', holders: [{ addr: '10.0.0.1', port: 1 }] },
    ],
  });
});

it('shows a Redis URL without its password', () => {
  expect(redisLabel('redis://user:secret@db.example:6379/3')).toBe('redis://user@db.example:6379/3');
  expect(redisLabel('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
});
