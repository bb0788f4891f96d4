/**
 * `peer serve --http` and `--log-format json` as people run them: the real bin, real sockets.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { Fixtures, PEER_BIN } from '../helpers/peer-fixtures.js';
import { metric } from './http-fixtures.js';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

it('serves the page, API and metrics on --http, logs JSON lines with --log-format json, and stops cleanly', async () => {
  const index = await fx.indexBin();
  const dir = await fx.tempDir();
  await writeFile(join(dir, 'a.txt'), 'aaa');
  const { child } = await fx.serveBin(dir, index.addr, ['--http', '127.0.0.1:0', '--log-format', 'json']);
  const lines = child.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const line of lines) expect(line).toMatchObject({ time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), level: expect.any(String), msg: expect.any(String) });
  expect(lines).toContainEqual(expect.objectContaining({ level: 'info', event: 'registered', name: 'a.txt', size: 3 }));
  const url = String(lines.find((l) => l['event'] === 'http-listening')!['url']);
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  expect((await fetch(`${url}healthz`)).status).toBe(200);
  expect(metric(await (await fetch(`${url}metrics`)).text(), 'peerdex_peer_shared_files')).toBe(1);
  expect(((await (await fetch(`${url}api/status`)).json()) as { shared: unknown[] }).shared).toEqual([{ name: 'a.txt', size: 3, sha256: expect.any(String) }]);
  child.kill('SIGTERM');
  expect((await child.waitExit()).code).toBe(0);
  expect(child.lines.map((l) => JSON.parse(l) as { event?: string }).some((l) => l.event === 'deregistered')).toBe(true);
});

it.each([
  [['--http', '0.0.0.0:0'], /--http on 0\.0\.0\.0 is reachable from other hosts: give --http-token TOKEN/],
  [['--http', 'localhost:99999'], /--http must be \[HOST:\]PORT/],
  [['--http', '127.0.0.1:0', '--http-token', ''], /--http-token must not be empty/],
])('refuses %j with one line and exit 1, before sharing anything', async (extra, message) => {
  const dir = await fx.tempDir();
  const r = await fx.run(PEER_BIN, ['serve', '--dir', dir, '--port', '0', '--index', '127.0.0.1:9', ...extra]);
  expect(r.code).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(message);
  expect(r.stdout).toBe('');
});
