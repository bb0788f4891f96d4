/**
 * Settled files only: a file still being written is registered once, complete, after it has
 * stopped changing; files in subfolders are reported once instead of ignored silently.
 */
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { binaryContent, Fixtures, MiB, PEER_BIN, sha256Text, waitFor } from '../helpers/peer-fixtures.js';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

it('a file written over a few seconds is registered once, with the digest of the whole file', async () => {
  const index = (await fx.indexBin(['--quiet'])).addr;
  const dir = await fx.tempDir();
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'sub', 'inner.txt'), 'not shared');
  const serve = await fx.serveBin(dir, index, ['--rescan', '0.2', '--settle', '2']);
  expect(serve.child.stdout).toContain('1 file(s) in subfolders are not shared');

  const body = binaryContent(MiB, 3);
  const path = join(dir, 'growing.bin');
  for (let at = 0; at < body.length; at += body.length / 8) {
    await appendFile(path, body.subarray(at, at + body.length / 8));
    await new Promise((r) => setTimeout(r, 300)); // a copy in progress, slower than a rescan
  }
  await serve.child.waitForLine(/registered "growing\.bin"/, 10_000);
  await new Promise((r) => setTimeout(r, 500)); // a second registration would show by now
  const registrations = serve.child.lines.filter((l) => l.includes('registered "growing.bin"') && !l.includes('deregistered'));
  expect(registrations).toHaveLength(1);
  expect(registrations[0]).toContain(`sha256 ${sha256Text(body)}`);
  expect(serve.child.stdout).toContain('"growing.bin" is being written; it is registered once it has not changed for a moment');
  await waitFor(
    async () => {
      const r = await fx.run(PEER_BIN, ['search', 'growing.bin', '--json', '--index', index]);
      return r.code === 0 && JSON.parse(r.stdout).sha256 === sha256Text(body);
    },
    5000,
    'the index to hold the whole file',
  );
});
