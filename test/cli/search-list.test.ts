/**
 * Finding things: `peer search` by exact name (S), glob or substring (from the listing), with
 * the exact miss falling back to names containing it; `peer list` blocks with names in
 * columns that fit the width (or one per line with --long). Layout is tested pure; the
 * commands through the real bins.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { columns, holdersByName, listingBlocks } from '../../src/cli/listing-format.js';
import { Fixtures, PEER_BIN } from '../helpers/peer-fixtures.js';

describe('layout', () => {
  it('fills columns top to bottom and never passes the width', () => {
    const names = Array.from({ length: 10 }, (_, i) => `name-${i}`);
    const lines = columns(names, 30);
    expect(lines).toEqual(['  name-0  name-4  name-8', '  name-1  name-5  name-9', '  name-2  name-6', '  name-3  name-7']);
    for (const width of [1, 10, 17, 40, 200]) for (const line of columns(names, width)) expect(line.length <= Math.max(width, 2 + 6)).toBe(true);
  });

  it('one block per server, names sorted as people count, escaped; --long one per line', () => {
    const servers = [{ addr: '10.0.0.1', port: 9100, names: ['file-10', 'file-2', 'bad\x1bname'] }];
    expect(listingBlocks(servers, { width: 80, long: false })).toEqual(['', '10.0.0.1:9100  (3 names)', '  bad\\x1bname  file-2       file-10']);
    expect(listingBlocks(servers, { width: 80, long: true })).toEqual(['', '10.0.0.1:9100  (3 names)', '  bad\\x1bname', '  file-2', '  file-10']);
  });

  it('gathers the holders of each matching name', () => {
    const servers = [
      { addr: 'a', port: 1, names: ['x.txt', 'y.bin'] },
      { addr: 'b', port: 2, names: ['x.txt'] },
    ];
    expect(holdersByName(servers, (n) => n.endsWith('.txt'))).toEqual([
      {
        filename: 'x.txt',
        holders: [
          { addr: 'a', port: 1 },
          { addr: 'b', port: 2 },
        ],
      },
    ]);
  });
});

describe('through the CLI', () => {
  const fx = new Fixtures();
  afterEach(() => fx.cleanup());

  it('finds by exact name, glob, substring, and falls back from an exact miss', async () => {
    const index = (await fx.indexBin(['--quiet'])).addr;
    const dir = await fx.tempDir();
    for (const name of ['hello.txt', 'Holiday.jpg', 'notes.md']) await writeFile(join(dir, name), name);
    const { port } = await fx.serveBin(dir, index);
    const search = async (...args: string[]) => fx.run(PEER_BIN, ['search', ...args, '--index', index]);

    expect((await search('hello.txt')).stdout).toMatch(/^"hello\.txt" is held by 127\.0\.0\.1:\d+ \(sha256 /);
    expect((await search('*.txt')).stdout).toBe(`"hello.txt" is held by 127.0.0.1:${port}\n`);
    expect((await search('hol', '--contains')).stdout).toBe(`"Holiday.jpg" is held by 127.0.0.1:${port}\n`);
    expect((await search('notes')).stdout).toBe(`no name is exactly "notes"; names containing it:\n"notes.md" is held by 127.0.0.1:${port}\n`);
    const json = JSON.parse((await search('h*', '--json')).stdout);
    expect(json).toEqual({ pattern: 'h*', contains: false, matches: [{ filename: 'hello.txt', holders: [{ addr: '127.0.0.1', port }] }] });
    const none = await search('*.iso');
    expect(none.code).toBe(1);
    expect(none.stderr).toBe(`peer: no name in index ${index} matches "*.iso"\n`);
    const miss = await search('absent');
    expect(miss.stderr).toBe('peer: no peer has "absent"\n');

    const long = await fx.run(PEER_BIN, ['list', '--long', '--index', index]);
    expect(long.stdout).toContain(`127.0.0.1:${port}  (3 names)\n  hello.txt\n  Holiday.jpg\n  notes.md\n`);
  });
});
