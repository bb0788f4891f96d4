/**
 * download() against an in-process IndexServer and ContentServers on 127.0.0.1 (port 0):
 * verification, re-registration, resume from a part file, existing files, failover.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IndexServer } from '../../src/index/udp-server.js';
import type { ContentServerEvent } from '../../src/peer/content-server.js';
import { download, type DownloadEvent } from '../../src/peer/downloader.js';
import type { IndexClient } from '../../src/peer/index-client.js';
import { binaryContent, Fixtures, MiB, sha256Text } from '../helpers/peer-fixtures.js';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

const NAME = 'movie.bin';
const SIZE = 5 * MiB + 321;
const content = binaryContent(SIZE, 11);
const digest = sha256Text(content);

let indexServer: IndexServer;
let index: IndexClient;
let seedDir: string;
let dlDir: string;
let holderPort: number;
let served: ContentServerEvent[];

beforeEach(async () => {
  const idx = await fx.index();
  indexServer = idx.server;
  index = fx.indexClient(idx.port);
  seedDir = await fx.tempDir();
  dlDir = await fx.tempDir();
  await writeFile(join(seedDir, NAME), content);
  const cs = await fx.contentServer(seedDir);
  holderPort = cs.port;
  served = cs.events;
  await index.register({ port: holderPort, addr: '', filename: NAME, sha256: digest });
});

const servedEvents = () => served.filter((e): e is Extract<ContentServerEvent, { type: 'served' }> => e.type === 'served');
const listing = async () => (await index.list()).map((s) => ({ server: `${s.addr}:${s.port}`, names: [...s.names].sort() }));
/** A TCP port with nobody listening on it. */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('a fresh download', () => {
  it('fetches, verifies, keeps the file and registers it once its own content server serves it', async () => {
    const progress: number[] = [];
    const own = await fx.contentServer(dlDir); // a `peer serve` of the download folder
    const result = await download({ index, filename: NAME, dir: dlDir, registerPort: own.port, onProgress: (p) => progress.push(p.received) });
    expect(result).toMatchObject({
      filename: NAME,
      path: join(dlDir, NAME),
      size: SIZE,
      sha256: digest,
      holders: [`127.0.0.1:${holderPort}`],
      resumedFrom: 0,
      alreadyHad: false,
      registered: true,
    });
    expect((await readFile(join(dlDir, NAME))).equals(content)).toBe(true);
    expect(await readdir(dlDir)).toEqual([NAME]); // no part or meta file left behind
    expect(progress.at(-1)).toBe(SIZE);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(await listing()).toEqual(
      expect.arrayContaining([
        { server: `127.0.0.1:${holderPort}`, names: [NAME] },
        { server: `127.0.0.1:${own.port}`, names: [NAME] },
      ]),
    );
    // The new registration carries the digest, so the next downloader can check it.
    const holders = [await index.search(NAME), await index.search(NAME)];
    expect(holders.find((h) => h.port === own.port)?.sha256).toBe(digest);
  });

  it('registers nothing when nothing serves the file on the content port, and says why', async () => {
    const nobody = await deadPort();
    const result = await download({ index, filename: NAME, dir: dlDir, registerPort: nobody });
    expect(result.registered).toBe(false);
    expect(result.notShared).toBe(`not shared: nothing serves ${NAME} on port ${nobody} (run peer serve --dir ${dlDir} --port ${nobody}, or use --seed)`);
    expect(await listing()).toEqual([{ server: `127.0.0.1:${holderPort}`, names: [NAME] }]);
  });

  it('does not register when not asked to', async () => {
    const result = await download({ index, filename: NAME, dir: dlDir });
    expect(result.registered).toBe(false);
    expect(await listing()).toEqual([{ server: `127.0.0.1:${holderPort}`, names: [NAME] }]);
  });

  it('creates the download folder when it does not exist', async () => {
    const nested = join(dlDir, 'a', 'b');
    const result = await download({ index, filename: NAME, dir: nested });
    expect((await readFile(result.path)).equals(content)).toBe(true);
  });

  it('downloads an empty file', async () => {
    await writeFile(join(seedDir, 'empty'), '');
    await index.register({ port: holderPort, addr: '', filename: 'empty', sha256: sha256Text(Buffer.alloc(0)) });
    const result = await download({ index, filename: 'empty', dir: dlDir });
    expect(result.size).toBe(0);
    expect((await readFile(result.path)).length).toBe(0);
  });

  it('fails with ERR_NOT_FOUND for a name nobody has, leaving nothing behind', async () => {
    await expect(download({ index, filename: 'nobody-has-it', dir: dlDir })).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
    expect(await readdir(dlDir)).toEqual([]);
  });

  it('refuses an unsafe name before asking anyone', async () => {
    await expect(download({ index, filename: '../escape', dir: dlDir })).rejects.toMatchObject({ code: 'ERR_USAGE' });
  });

  it('rejects a holder whose content differs from the digest the index gave, keeping nothing', async () => {
    await writeFile(join(seedDir, 'liar.bin'), 'not what was promised');
    await index.register({ port: holderPort, addr: '', filename: 'liar.bin', sha256: digest });
    await expect(download({ index, filename: 'liar.bin', dir: dlDir, registerPort: 4567, waitMs: 300 })).rejects.toMatchObject({ code: 'ERR_INTEGRITY' });
    expect((await readdir(dlDir)).filter((n) => !n.startsWith('.peerdex-'))).toEqual([]);
    expect((await listing()).some((s) => s.server === '127.0.0.1:4567')).toBe(false);
  });
});

describe('resume', () => {
  const partPath = () => join(dlDir, `.peerdex-${NAME}.part`);
  const metaPath = () => join(dlDir, `.peerdex-${NAME}.meta`);

  it('resumes a part file of the first format: asks only for the pieces it lacks', async () => {
    const kept = 2 * MiB + 12345; // whole pieces (256 KiB for this size) up to 2 MiB are used
    const whole = 2 * MiB;
    await writeFile(partPath(), content.subarray(0, kept));
    await writeFile(metaPath(), JSON.stringify({ sha256: digest, size: SIZE }));
    const events: DownloadEvent[] = [];
    const result = await download({ index, filename: NAME, dir: dlDir, onEvent: (e) => events.push(e) });
    expect(result.resumedFrom).toBe(whole);
    const ranges = servedEvents().map((e) => ({ offset: e.offset, bytes: e.bytes }));
    expect(Math.min(...ranges.map((r) => r.offset))).toBe(whole);
    expect(ranges.reduce((n, r) => n + r.bytes, 0)).toBe(SIZE - whole);
    expect(events).toContainEqual({ type: 'holder', holder: `127.0.0.1:${holderPort}`, resumeFrom: whole });
    expect((await readFile(join(dlDir, NAME))).equals(content)).toBe(true);
    expect(await readdir(dlDir)).toEqual([NAME]);
  });

  it('finishes a part file that already holds every byte', async () => {
    await writeFile(partPath(), content);
    await writeFile(metaPath(), JSON.stringify({ sha256: digest, size: SIZE }));
    const result = await download({ index, filename: NAME, dir: dlDir });
    expect(result.resumedFrom).toBe(SIZE);
    expect(servedEvents()).toEqual([]); // verified from disk: no holder was asked for anything
    expect((await readFile(join(dlDir, NAME))).equals(content)).toBe(true);
  });

  it('discards a part file whose meta names other content than the index does', async () => {
    const other = sha256Text(Buffer.from('some other version'));
    await writeFile(partPath(), Buffer.alloc(MiB, 0xee));
    await writeFile(metaPath(), JSON.stringify({ sha256: other, size: SIZE }));
    const events: DownloadEvent[] = [];
    const result = await download({ index, filename: NAME, dir: dlDir, onEvent: (e) => events.push(e) });
    // Nothing of the old part is used: every byte comes from the holder.
    expect(result.resumedFrom).toBe(0);
    expect(servedEvents().reduce((n, e) => n + e.bytes, 0)).toBe(SIZE);
    expect(events).toContainEqual({ type: 'holder', holder: `127.0.0.1:${holderPort}`, resumeFrom: 0 });
    expect((await readFile(join(dlDir, NAME))).equals(content)).toBe(true);
    expect(await readdir(dlDir)).toEqual([NAME]);
  });

  it('discards a part file without usable meta', async () => {
    await writeFile(partPath(), content.subarray(0, 1000));
    await writeFile(metaPath(), '{not json');
    const result = await download({ index, filename: NAME, dir: dlDir });
    expect(result.resumedFrom).toBe(0);
    expect(servedEvents().reduce((n, e) => n + e.bytes, 0)).toBe(SIZE);
    expect((await readFile(join(dlDir, NAME))).equals(content)).toBe(true);
  });

  it('finds corrupt kept bytes by asking the holder again, and repairs just that piece', async () => {
    const corrupt = Buffer.from(content.subarray(0, MiB));
    corrupt[300_000] ^= 0xff; // in the second 256 KiB piece
    await writeFile(partPath(), corrupt);
    await writeFile(metaPath(), JSON.stringify({ sha256: digest, size: SIZE }));
    const events: DownloadEvent[] = [];
    const result = await download({ index, filename: NAME, dir: dlDir, onEvent: (e) => events.push(e) });
    expect(events).toContainEqual({ type: 'repaired', liar: 'an earlier run', pieces: 1 });
    expect(result.resumedFrom).toBe(MiB);
    expect((await readFile(join(dlDir, NAME))).equals(content)).toBe(true);
    expect(await readdir(dlDir)).toEqual([NAME]);
  });
});

describe('an existing file under the final name', () => {
  it('refuses other content with ERR_FILE and leaves the file alone', async () => {
    await writeFile(join(dlDir, NAME), 'my own notes');
    await expect(download({ index, filename: NAME, dir: dlDir, registerPort: 4567 })).rejects.toMatchObject({
      code: 'ERR_FILE',
      message: expect.stringContaining('--overwrite'),
    });
    expect(await readFile(join(dlDir, NAME), 'utf8')).toBe('my own notes');
    expect(servedEvents()).toEqual([]);
  });

  it('replaces other content with overwrite', async () => {
    await writeFile(join(dlDir, NAME), 'my own notes');
    const result = await download({ index, filename: NAME, dir: dlDir, overwrite: true });
    expect(result.alreadyHad).toBe(false);
    expect((await readFile(join(dlDir, NAME))).equals(content)).toBe(true);
  });

  it('keeps an identical file, downloads nothing and registers it again where it is served', async () => {
    await writeFile(join(dlDir, NAME), content);
    const own = await fx.contentServer(dlDir);
    const result = await download({ index, filename: NAME, dir: dlDir, registerPort: own.port });
    expect(result).toMatchObject({ alreadyHad: true, registered: true, size: SIZE, sha256: digest, holders: [] });
    expect(servedEvents()).toEqual([]);
    expect(await listing()).toContainEqual({ server: `127.0.0.1:${own.port}`, names: [NAME] });
  });

  it('refuses a folder in the way with ERR_FILE', async () => {
    await mkdir(join(dlDir, NAME));
    await expect(download({ index, filename: NAME, dir: dlDir })).rejects.toMatchObject({ code: 'ERR_FILE' });
  });
});

describe('several holders', () => {
  it('falls over from a dead holder to the next one', async () => {
    const dead = await deadPort();
    // Two holders in the index: the dead one and the live one. Round robin hands them out in
    // turn, so over two downloads the dead one comes first at least once.
    await index.deregister({ port: holderPort, addr: '', filename: NAME, sha256: digest });
    await index.register({ port: dead, addr: '', filename: NAME, sha256: digest });
    await index.register({ port: holderPort, addr: '', filename: NAME, sha256: digest });
    const failures: DownloadEvent[] = [];
    for (const sub of ['one', 'two']) {
      const result = await download({ index, filename: NAME, dir: join(dlDir, sub), onEvent: (e) => e.type === 'holder-failed' && failures.push(e) });
      expect(result.holders.at(-1)).toBe(`127.0.0.1:${holderPort}`);
      expect((await readFile(result.path)).equals(content)).toBe(true);
    }
    expect(failures.length).toBeGreaterThanOrEqual(1);
    for (const f of failures) expect(f).toMatchObject({ holder: `127.0.0.1:${dead}`, reason: expect.stringContaining('refused') });
  });

  it('gives up with the last holder error when every holder is dead', async () => {
    await index.deregister({ port: holderPort, addr: '', filename: NAME, sha256: digest });
    await index.register({ port: await deadPort(), addr: '', filename: NAME, sha256: digest });
    await index.register({ port: await deadPort(), addr: '', filename: NAME, sha256: digest });
    const failure = download({ index, filename: NAME, dir: dlDir, waitMs: 600 });
    await expect(failure).rejects.toMatchObject({
      code: 'ERR_CONNECTION',
      message: expect.stringMatching(/2 holders tried, none could send it \(last: holder 127\.0\.0\.1:\d+ refused the connection\)/),
    });
    const err = (await failure.catch((e: unknown) => e)) as { details: { holders: { holder: string; reason: string }[] } };
    expect(err.details.holders).toHaveLength(2);
    expect(await readdir(dlDir)).toEqual([]);
  });

  it('gives up --wait after the last byte even while a dead holder keeps being retried', async () => {
    // The dead holder is tried again after rests of 0.5, 1, 2, 4 and 8 s: each retry must not
    // count as progress, or a wait longer than the longest rest would never run out.
    // Kept partial data: no size probe, straight to fetching pieces, where a retry starts a session.
    await writeFile(join(dlDir, `.peerdex-${NAME}.part`), content.subarray(0, MiB));
    await writeFile(join(dlDir, `.peerdex-${NAME}.meta`), JSON.stringify({ sha256: digest, size: SIZE }));
    await index.deregister({ port: holderPort, addr: '', filename: NAME, sha256: digest });
    await index.register({ port: await deadPort(), addr: '', filename: NAME, sha256: digest });
    await expect(download({ index, filename: NAME, dir: dlDir, waitMs: 9000 })).rejects.toMatchObject({ code: 'ERR_CONNECTION', details: { keptBytes: MiB } });
  }, 25_000);

  it('is served by the downloader once it is a holder itself', async () => {
    // Peer B downloads from A and registers under its own content server; A then leaves.
    const bDir = await fx.tempDir();
    const b = await fx.contentServer(bDir);
    await download({ index, filename: NAME, dir: bDir, registerPort: b.port });
    await index.deregister({ port: holderPort, addr: '', filename: NAME, sha256: digest });
    expect(await index.search(NAME)).toMatchObject({ port: b.port, sha256: digest });
    const result = await download({ index, filename: NAME, dir: dlDir });
    expect(result.holders).toEqual([`127.0.0.1:${b.port}`]);
    expect((await readFile(result.path)).equals(content)).toBe(true);
    expect(indexServer.registry).toBeDefined();
  });
});
