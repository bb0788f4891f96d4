/**
 * `peer download` as a user runs it, through the real bins on 127.0.0.1: several names and
 * --match, pieces from two holders at once, --seed (served and registered until Ctrl-C, and
 * only what was downloaded), the download rate limit, Ctrl-C with partial data kept and then
 * resumed, and bad options.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { binaryContent, Fixtures, MiB, PEER_BIN, waitFor } from '../helpers/peer-fixtures.js';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

let index: string;
beforeEach(async () => {
  index = (await fx.indexBin(['--quiet'])).addr;
});

const peer = (args: string[], timeoutMs?: number) => fx.run(PEER_BIN, [...args, '--index', index], timeoutMs);
const listing = async () => JSON.parse((await peer(['list', '--json'])).stdout).servers as { port: number; names: string[] }[];

async function folderWith(files: Record<string, Buffer | string>): Promise<string> {
  const dir = await fx.tempDir();
  for (const [name, body] of Object.entries(files)) await writeFile(join(dir, name), body);
  return dir;
}

describe('several files', () => {
  it('downloads names and --match matches, --jobs at a time, and names each failure', async () => {
    const files = { 'a.txt': 'alpha', 'b.txt': 'bravo', 'c1.log': 'one', 'c2.log': 'two', 'd.bin': binaryContent(MiB, 3) };
    await fx.serveBin(await folderWith(files), index);
    const dl = await fx.tempDir();
    const r = await peer(['download', 'a.txt', 'd.bin', '--match', 'c*.log', '--jobs', '2', '--dir', dl, '--no-register', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { downloads: { filename: string }[]; failed: unknown[] };
    expect(out.downloads.map((d) => d.filename).sort()).toEqual(['a.txt', 'c1.log', 'c2.log', 'd.bin']);
    expect(out.failed).toEqual([]);
    for (const d of out.downloads) expect(await readFile(join(dl, d.filename))).toEqual(Buffer.from(files[d.filename as keyof typeof files]));

    const bad = await peer(['download', 'b.txt', 'nope.txt', '--dir', dl, '--no-register']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('downloaded "b.txt"');
    expect(bad.stderr.trim().split('\n')).toEqual(['peer: 1 of 2 downloads failed: "nope.txt" (no peer has "nope.txt")']);
  });

  it('says clearly when --match finds nothing or no name is given', async () => {
    const dl = await fx.tempDir();
    const none = await peer(['download', '--match', '*.iso', '--dir', dl]);
    expect(none.code).toBe(1);
    expect(none.stderr).toBe(`peer: no name in index ${index} matches "*.iso"\n`);
    const empty = await peer(['download', '--dir', dl]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toBe("peer: name a file to download: peer download NAME, for example: peer download hello.txt (or --match '*.iso' for every name that matches)\n");
  });
});

describe('a swarm download', () => {
  it('takes pieces from two holders at once and reports what each sent', async () => {
    const big = binaryContent(3 * MiB + 17, 9);
    const a = await fx.serveBin(await folderWith({ 'big.bin': big }), index);
    const b = await fx.serveBin(await folderWith({ 'big.bin': big }), index);
    const dl = await fx.tempDir();
    const r = await peer(['download', 'big.bin', '--dir', dl, '--no-register', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { report: { holder: string; bytes: number }[]; holders: string[] };
    expect(got.holders.sort()).toEqual([`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`].sort());
    for (const h of got.report) expect(h.bytes).toBeGreaterThan(0);
    expect((await readFile(join(dl, 'big.bin'))).equals(big)).toBe(true);
  });

  it('--max-download-rate caps the rate of all downloads together', async () => {
    await fx.serveBin(await folderWith({ 'x.bin': binaryContent(MiB, 1), 'y.bin': binaryContent(MiB, 2) }), index);
    const dl = await fx.tempDir();
    const started = Date.now();
    const r = await peer(['download', 'x.bin', 'y.bin', '--dir', dl, '--no-register', '--max-download-rate', '1M']);
    expect(r.code, r.stderr).toBe(0);
    // 2 MiB at 1 MiB/s with a 100 KiB burst cannot take less than about 1.9 s (a lower bound only).
    expect(Date.now() - started).toBeGreaterThanOrEqual(1800);
  });
});

describe('--seed', () => {
  it('serves and registers what it downloaded (and nothing else of the folder) until Ctrl-C', async () => {
    await fx.serveBin(await folderWith({ 'song.ogg': 'la la la' }), index);
    const dl = await folderWith({ 'private.txt': 'not for sharing' });
    const seeder = fx.spawn(PEER_BIN, ['download', 'song.ogg', '--seed', '--port', '0', '--dir', dl, '--index', index]);
    const port = Number((await seeder.waitForLine(/seeding 1 file\(s\) on tcp port (\d+)/))[1]);
    expect(seeder.stdout).toContain(`serving and registered "song.ogg" at content port ${port}`);
    expect((await listing()).find((s) => s.port === port)?.names).toEqual(['song.ogg']);

    // A third peer can fetch it from the seeder alone.
    const other = await fx.tempDir();
    await peer(['deregister', 'song.ogg', '--port', String((await listing()).find((s) => s.port !== port)!.port)]);
    const r = await peer(['download', 'song.ogg', '--dir', other, '--no-register', '--json']);
    expect(JSON.parse(r.stdout).holders).toEqual([`127.0.0.1:${port}`]);
    const refused = await peer(['download', 'private.txt', '--dir', other, '--wait', '0']);
    expect(refused.code).toBe(1);

    seeder.kill('SIGINT');
    expect(await seeder.waitExit()).toEqual({ code: 0, signal: null });
    expect(seeder.stdout).toMatch(/SIGINT: deregistering 1 file\(s\) and closing/);
    expect((await listing()).some((s) => s.port === port)).toBe(false);
  });
});

describe('Ctrl-C', () => {
  it('stops, says what was kept and how to resume, exits 130; the next run resumes', async () => {
    const big = binaryContent(4 * MiB, 4);
    await fx.serveBin(await folderWith({ 'big.bin': big }), index, ['--max-upload-rate', '2M']);
    const dl = await fx.tempDir();
    const part = join(dl, '.peerdex-big.bin.part');
    const child = fx.spawn(PEER_BIN, ['download', 'big.bin', '--dir', dl, '--no-register', '--index', index]);
    // Stop once the piece map on disk shows some pieces done.
    const meta = join(dl, '.peerdex-big.bin.meta');
    const someDone = async () => {
      const saved = JSON.parse(await readFile(meta, 'utf8').catch(() => '{}')) as { done?: string };
      return Buffer.from(saved.done ?? '', 'base64').some((byte) => byte !== 0);
    };
    await waitFor(someDone, 10_000, 'pieces to be recorded in the piece map');
    child.kill('SIGINT');
    const exit = await child.waitExit();
    expect(exit.code).toBe(130);
    expect(child.stderr).toMatch(new RegExp(`^peer: stopped "big\\.bin": [\\d.]+ [KM]iB kept in ${part.replace(/[.]/g, '\\.')}; run the same command again to resume\\n$`));
    expect(existsSync(part)).toBe(true);
    expect(existsSync(join(dl, 'big.bin'))).toBe(false);

    const again = await peer(['download', 'big.bin', '--dir', dl, '--no-register', '--json'], 20_000);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).resumedFrom).toBeGreaterThan(0);
    expect((await readFile(join(dl, 'big.bin'))).equals(big)).toBe(true);
  });
});

describe('bad options', () => {
  it.each([
    [['--connections', '0'], '--connections must be a whole number from 1 to 64, got "0"'],
    [['--jobs', '1.5'], '--jobs must be a whole number from 1 to 64, got "1.5"'],
    [['--stall-timeout', '-1'], '--stall-timeout must be a duration like 300ms, 2s or 1m (a plain number is seconds), got "-1"'],
    [['--stall-timeout', '0s'], '--stall-timeout must be more than 0 up to 24 h, got "0s"'],
    [['--max-download-rate', 'fast'], '--max-download-rate must be bytes per second like 500k or 10M, got "fast"'],
    [['--max-size', '10M/s'], '--max-size must be a size in bytes like 700M or 4G, got "10M/s"'],
  ])('%j is refused with one line', async (extra, message) => {
    const r = await peer(['download', 'x', ...extra]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`peer: ${message}\n`);
  });
});
