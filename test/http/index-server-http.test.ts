/**
 * `index-server --http` and `--log-format json` as people run them: the real bin, real sockets.
 */
import { afterEach, expect, it } from 'vitest';
import { Fixtures, INDEX_BIN, rawPdu, waitFor } from '../helpers/peer-fixtures.js';
import { UdpClient } from '../helpers/udp.js';
import { metric } from './http-fixtures.js';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

it('serves the status page, API and metrics on --http, logs JSON lines with --log-format json, and stops cleanly', async () => {
  const { child, port } = await fx.indexBin(['--http', '127.0.0.1:0', '--log-format', 'json']);
  await child.waitForLine(/http-listening/);
  const lines = () => child.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const url = String(lines().find((l) => l['event'] === 'http-listening')!['url']);
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  expect((await fetch(`${url}healthz`)).status).toBe(200);

  const c = await UdpClient.open();
  fx.track(async () => c.close());
  await c.request(rawPdu('R', '9100;;a.txt'), port);
  await c.request(rawPdu('S', 'a.txt'), port);
  const text = await (await fetch(`${url}metrics`)).text();
  expect(metric(text, 'peerdex_index_requests_total\\{type="S"\\}')).toBe(1);
  expect(metric(text, 'peerdex_index_registrations')).toBe(1);
  expect(((await (await fetch(`${url}api/content?match=*.txt`)).json()) as { names: unknown[] }).names).toEqual([{ name: 'a.txt', holders: [{ addr: '127.0.0.1', port: 9100 }] }]);
  await waitFor(() => lines().some((l) => l['event'] === 'registered'));
  for (const line of lines()) expect(line).toMatchObject({ time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), level: expect.any(String), msg: expect.any(String) });
  expect(lines()).toContainEqual(expect.objectContaining({ level: 'info', event: 'registered', name: 'a.txt', addr: '127.0.0.1', port: 9100, from: '127.0.0.1' }));
  child.kill('SIGTERM');
  expect((await child.waitExit()).code).toBe(0);
  expect(lines().at(-1)).toMatchObject({ event: 'closed', signal: 'SIGTERM', received: 2 });
});

it('is off by default: no page, and the human log lines stay', async () => {
  const { child } = await fx.indexBin();
  expect(child.lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\S+ index listening on udp 127\.0\.0\.1:\d+ \(ttl 90 s\)$/);
  expect(child.lines.join('\n')).not.toMatch(/status page/);
});

it.each([
  [['--http', 'localhost:99999'], /--http must be \[HOST:\]PORT/],
  [['--http', 'nonsense'], /--http must be \[HOST:\]PORT/],
  [['--log-format', 'xml'], /log-format/],
])('refuses %j with one line and exit 1', async (extra, message) => {
  const r = await fx.run(INDEX_BIN, ['--port', '0', '--host', '127.0.0.1', ...extra]);
  expect(r.code).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(message);
  expect(r.stdout).toBe('');
});
