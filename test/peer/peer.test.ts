/**
 * The Peer object: one content server, its registrations and its downloads. A download
 * finished inside a running peer is served and registered at once; close() cancels downloads
 * (keeping their partial data), deregisters and closes, and may be called twice.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { IndexClient } from '../../src/peer/index-client.js';
import { Peer, type PeerEvent } from '../../src/peer/peer.js';
import { RateLimiter } from '../../src/peer/rate-limiter.js';
import { binaryContent, Fixtures, MiB, sha256Text, waitFor } from '../helpers/peer-fixtures.js';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

let index: IndexClient;
beforeEach(async () => {
  index = fx.indexClient((await fx.index()).port);
});

async function startPeer(dir: string, extra: Partial<Parameters<typeof Peer.listen>[0]> = {}): Promise<Peer> {
  // Rescans an hour apart: anything registered during a test was registered by the peer itself.
  const peer = await Peer.listen({ dir, index, port: 0, host: '127.0.0.1', rescanMs: 3_600_000, settleMs: 0, ...extra });
  fx.track(() => peer.close());
  await peer.start();
  return peer;
}

const holdersOf = async (name: string) => (await index.list()).filter((s) => s.names.includes(name)).map((s) => s.port);

it('serves and registers a finished download at once, and reports it on one event stream', async () => {
  const body = binaryContent(2 * MiB + 5, 7);
  const seedDir = await fx.tempDir();
  await writeFile(join(seedDir, 'film.bin'), body);
  const seed = await startPeer(seedDir);
  const peer = await startPeer(await fx.tempDir());
  const events: PeerEvent['type'][] = [];
  peer.on('event', (e) => events.push(e.type));

  const result = await peer.download('film.bin');
  expect(result).toMatchObject({ size: body.length, sha256: sha256Text(body), registered: true, holders: [`127.0.0.1:${seed.port}`] });
  expect((await holdersOf('film.bin')).sort()).toEqual([seed.port, peer.port].sort());
  expect(events).toEqual(expect.arrayContaining(['download-started', 'download-progress', 'download-done', 'seeder']));

  // The next downloader can get it from this peer alone.
  await seed.close();
  const third = await startPeer(await fx.tempDir());
  expect((await third.download('film.bin')).holders).toEqual([`127.0.0.1:${peer.port}`]);
});

it('close() cancels a running download keeping its partial data, deregisters, and is idempotent', async () => {
  const seedDir = await fx.tempDir();
  await writeFile(join(seedDir, 'slow.bin'), binaryContent(4 * MiB, 8));
  const limiter = new RateLimiter({ bytesPerSecond: MiB });
  fx.track(() => limiter.close());
  await startPeer(seedDir, { uploadLimiter: limiter });
  const dir = await fx.tempDir();
  await writeFile(join(dir, 'mine.txt'), 'mine');
  const peer = await startPeer(dir);
  expect(await holdersOf('mine.txt')).toEqual([peer.port]);

  let received = 0;
  peer.on('event', (e) => {
    if (e.type === 'download-progress') received = e.progress.received;
  });
  const running = peer.download('slow.bin');
  const failed = running.catch((e: unknown) => e as Error & { code: string; details?: { keptBytes?: number } });
  await waitFor(() => received >= 2 * 256 * 1024, 10_000, 'a whole 256 KiB piece to arrive');
  await Promise.all([peer.close(), peer.close()]);
  const err = await failed;
  expect(err.code).toBe('ERR_CANCELLED');
  expect(err.details?.keptBytes).toBeGreaterThan(0);
  expect(existsSync(join(dir, '.peerdex-slow.bin.part'))).toBe(true);
  expect(existsSync(join(dir, 'slow.bin'))).toBe(false);
  expect(await holdersOf('mine.txt')).toEqual([]);
  await expect(peer.download('slow.bin')).rejects.toThrow(/closing/);
  expect(await readFile(join(dir, 'mine.txt'), 'utf8')).toBe('mine');
});
