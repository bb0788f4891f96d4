/**
 * End to end through the real bins (dist/, built by `npm run build`), as child processes on
 * 127.0.0.1 with port 0: an index, peers serving folders, one-shot commands, and a holder
 * that dies mid-transfer.
 */
import { watch } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { binaryContent, Fixtures, MiB, PEER_BIN, sha256Text } from '../helpers/peer-fixtures.js';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

let index: string;

beforeEach(async () => {
  index = (await fx.indexBin()).addr;
});

const peer = (...args: string[]) => fx.run(PEER_BIN, [...args, '--index', index]);

/** Runs a peer command that must succeed, and returns its stdout. */
async function ok(...args: string[]): Promise<string> {
  const r = await peer(...args);
  if (r.code !== 0) throw new Error(`peer ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  expect(r.stderr).toBe('');
  return r.stdout;
}

describe('peer CLI end to end', () => {
  it('serves, searches, lists, downloads, and re-registers the download', async () => {
    const movie = binaryContent(3 * MiB + 99, 21);
    const digest = sha256Text(movie);
    const aDir = await fx.tempDir();
    const bDir = await fx.tempDir();
    const cDir = await fx.tempDir();
    await writeFile(join(aDir, 'movie.bin'), movie);
    await writeFile(join(aDir, 'notes.txt'), 'some notes\n');

    const a = await fx.serveBin(aDir, index);
    expect(a.child.lines[0]).toMatch(new RegExp(`serving .* on tcp 127\\.0\\.0\\.1:${a.port}, index ${index.replace(/\./g, '\\.')}$`));

    expect(await ok('search', 'movie.bin')).toBe(`"movie.bin" is held by 127.0.0.1:${a.port} (sha256 ${digest})\n`);
    expect(JSON.parse(await ok('search', 'movie.bin', '--json'))).toEqual({
      filename: 'movie.bin',
      addr: '127.0.0.1',
      port: a.port,
      sha256: digest,
      sha256Hex: Buffer.from(digest, 'base64url').toString('hex'),
    });

    const table = await ok('list');
    expect(table).toContain(`1 content server(s), 2 registration(s)`);
    expect(table).toContain(`\n127.0.0.1:${a.port}  (2 names)\n  movie.bin  notes.txt\n`);
    const listed = JSON.parse(await ok('list', '--json')) as { servers: { addr: string; port: number; names: string[] }[] };
    expect(listed.servers.map((s) => ({ ...s, names: [...s.names].sort() }))).toEqual([{ addr: '127.0.0.1', port: a.port, names: ['movie.bin', 'notes.txt'] }]);

    // Peer B serves its (empty) folder; the folder is rescanned rarely, so the registration
    // that makes B a holder is the one `peer download` makes.
    const b = await fx.serveBin(bDir, index, ['--rescan', '3600']);
    const got = JSON.parse(await ok('download', 'movie.bin', '--dir', bDir, '--port', String(b.port), '--json'));
    expect(got).toMatchObject({
      filename: 'movie.bin',
      size: movie.length,
      sha256: digest,
      holders: [`127.0.0.1:${a.port}`],
      resumedFrom: 0,
      alreadyHad: false,
      registered: true,
    });
    expect((await readFile(join(bDir, 'movie.bin'))).equals(movie)).toBe(true);
    expect(await readdir(bDir)).toEqual(['movie.bin']);

    // A stops: it deregisters what it served and exits cleanly.
    a.child.kill('SIGTERM');
    expect(await a.child.waitExit()).toEqual({ code: 0, signal: null });
    expect(a.child.stdout).toContain('SIGTERM: deregistering 2 file(s)');

    expect(JSON.parse(await ok('search', 'movie.bin', '--json'))).toEqual({
      filename: 'movie.bin',
      addr: '127.0.0.1',
      port: b.port,
      sha256: digest,
      sha256Hex: Buffer.from(digest, 'base64url').toString('hex'),
    });
    const r = await peer('search', 'notes.txt');
    expect(r.code).toBe(1);

    const again = JSON.parse(await ok('download', 'movie.bin', '--dir', cDir, '--no-register', '--json'));
    expect(again).toMatchObject({ holders: [`127.0.0.1:${b.port}`], registered: false, sha256: digest });
    expect((await readFile(join(cDir, 'movie.bin'))).equals(movie)).toBe(true);
    // One line for the whole connection, however many ranges it asked for.
    const sent = await b.child.waitForLine(/sent "movie\.bin" \(3\.0 MiB( in (\d+) ranges)?\) to 127\.0\.0\.1:\d+$/);
    expect(b.child.lines.filter((l) => l.includes('sent "movie.bin"'))).toHaveLength(1);
    expect(Number(sent[2] ?? 1)).toBeGreaterThanOrEqual(1);
  });

  it('prints people-readable download lines, and never registers a port that nothing serves', async () => {
    const aDir = await fx.tempDir();
    const bDir = await fx.tempDir();
    await writeFile(join(aDir, 'song.ogg'), 'la la la');
    const a = await fx.serveBin(aDir, index);
    const out = await ok('download', 'song.ogg', '--dir', bDir, '--port', '45678');
    expect(out.split('\n')).toEqual([
      `downloaded "song.ogg" (8 B, sha256 ${sha256Text(Buffer.from('la la la'))} verified) from 127.0.0.1:${a.port} to ${join(bDir, 'song.ogg')}`,
      `not shared: nothing serves song.ogg on port 45678 (run peer serve --dir ${bDir} --port 45678, or use --seed)`,
      '',
    ]);
    const again = await ok('download', 'song.ogg', '--dir', bDir, '--port', '45678');
    expect(again).toContain(`"song.ogg" is already in ${bDir} with the same content`);
    const listed = JSON.parse(await ok('list', '--json')) as { servers: { port: number; names: string[] }[] };
    expect(listed.servers.map((s) => s.port)).toEqual([a.port]); // no phantom registration

    // With a peer serving the download folder on that port, the same command registers it.
    const b = await fx.serveBin(bDir, index, ['--rescan', '3600']);
    const shared = await ok('download', 'song.ogg', '--dir', bDir, '--port', String(b.port));
    expect(shared).toContain(`registered "song.ogg" with index ${index} at content port ${b.port}`);
  });

  it('fails a download of a missing name with exit code 1 and one line on stderr', async () => {
    const dir = await fx.tempDir();
    const r = await peer('download', 'no-such-thing.iso', '--dir', dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe('');
    expect(lines[0]).toContain('no-such-thing.iso');
    expect(await readdir(dir)).toEqual([]);
  });

  it('fails when the holder is killed mid-transfer, keeps no final file, and resumes later', async () => {
    const size = 96 * MiB;
    // Written as 1 MiB blocks that differ, so a misplaced block would show in the digest.
    const block = binaryContent(MiB, 5);
    const aDir = await fx.tempDir();
    const dlDir = await fx.tempDir();
    const big = join(aDir, 'big.bin');
    const whole = Buffer.alloc(size);
    for (let i = 0; i < size / MiB; i++) {
      block.copy(whole, i * MiB);
      whole.writeUInt32BE(i, i * MiB);
    }
    await writeFile(big, whole);
    const a = await fx.serveBin(aDir, index);

    // Kill the holder the moment the downloader starts writing the part file.
    const partName = '.peerdex-big.bin.part';
    const watcher = watch(dlDir);
    fx.track(() => watcher.close());
    const killed = new Promise<void>((resolve) =>
      watcher.on('change', (_type, name) => {
        if (name === partName || name === '.peerdex-big.bin.meta') {
          a.child.kill('SIGKILL');
          resolve();
        }
      }),
    );
    const dl = fx.spawn(PEER_BIN, ['download', 'big.bin', '--dir', dlDir, '--port', '45679', '--index', index, '--json', '--wait', '1']);
    await killed;
    const exit = await dl.waitExit(15_000);
    expect(exit.code).toBe(1);
    expect(dl.stderr).toBe(''); // with --json the error is a JSON object on stdout
    const { error } = JSON.parse(dl.stdout) as { error: { message: string; keptBytes?: number; holders: { holder: string }[] } };
    expect(error.message).toContain(`127.0.0.1:${a.port}`);
    expect(error.holders.map((h) => h.holder)).toEqual([`127.0.0.1:${a.port}`]);
    const left = await readdir(dlDir);
    expect(left).not.toContain('big.bin');
    const kept = error.keptBytes ?? 0;
    expect(kept).toBeLessThan(size);

    // A new holder of the same folder (the dead one is still registered: it was killed, so it
    // could not deregister). The next run skips the dead one and resumes the part file.
    const a2 = await fx.serveBin(aDir, index);
    const got = JSON.parse(await ok('download', 'big.bin', '--dir', dlDir, '--no-register', '--json'));
    expect(got).toMatchObject({ size, resumedFrom: kept, holders: expect.arrayContaining([`127.0.0.1:${a2.port}`]) });
    expect((await readFile(join(dlDir, 'big.bin'))).equals(whole)).toBe(true);
    expect(await readdir(dlDir)).toEqual(['big.bin']);
  });
});
