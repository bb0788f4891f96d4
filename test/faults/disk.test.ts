/**
 * Local disk trouble: a full or read-only folder fails the download with one clear line and
 * leaves nothing half-written; an existing file is kept unless --overwrite.
 *
 * The full and read-only folders are small tmpfs mounts, which need root (CI runs as root);
 * where mounting is not allowed those two tests are skipped with a note.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { IndexServer } from '../../src/index/udp-server.js';
import { ContentServer } from '../../src/peer/content-server.js';
import { FileLibrary } from '../../src/peer/file-library.js';
import { IndexClient } from '../../src/peer/index-client.js';
import { sha256File } from '../../src/peer/digest.js';
import { BIN, run } from '../../scripts/lib/processes.js';

let dir: string;
let index: IndexServer;
let content: ContentServer;
let client: IndexClient;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peerdex-disk-'));
  await mkdir(join(dir, 'shared'));
  await writeFile(join(dir, 'shared', 'big.bin'), randomBytes(3 * 1024 * 1024));
  await writeFile(join(dir, 'shared', 'note.txt'), 'the real note');
  index = await IndexServer.listen({ port: 0, host: '127.0.0.1' });
  content = await ContentServer.listen({ library: new FileLibrary(join(dir, 'shared')), port: 0, host: '127.0.0.1' });
  client = new IndexClient({ host: '127.0.0.1', port: index.address().port, timeoutMs: 100, tries: 3 });
  for (const name of ['big.bin', 'note.txt']) {
    await client.register({ port: content.address().port, addr: '', filename: name, sha256: await sha256File(join(dir, 'shared', name)) });
  }
});

afterEach(async () => {
  await content.close();
  await index.close();
  await rm(dir, { recursive: true, force: true });
});

const download = (name: string, into: string, ...extra: string[]) =>
  run(BIN.peer, ['download', name, '--dir', into, '--port', '9300', '--index', `127.0.0.1:${index.address().port}`, '--tries', '3', '--timeout', '100', ...extra]);

describe('on small tmpfs mounts', () => {
  const mounts: string[] = [];
  let canMount = false;
  beforeAll(async () => {
    const probe = await mkdtemp(join(tmpdir(), 'peerdex-mount-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' });
      execFileSync('umount', [probe], { stdio: 'ignore' });
      canMount = true;
    } catch {
      console.warn('disk tests skipped: this user cannot mount tmpfs');
    }
    await rm(probe, { recursive: true, force: true });
  });
  afterAll(() => {
    for (const m of mounts) execFileSync('umount', ['-l', m], { stdio: 'ignore' });
  });

  async function mountTmpfs(options: string): Promise<string> {
    const target = await mkdtemp(join(tmpdir(), 'peerdex-mnt-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', target], { stdio: 'ignore' });
    mounts.push(target);
    return target;
  }

  it('a file larger than the free space is refused before anything is written', async (ctx) => {
    if (!canMount) ctx.skip();
    const small = await mountTmpfs('size=1m');
    const r = await download('big.bin', small);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      `peer: cannot download "big.bin": it is 3145728 bytes, more than the 1048576 bytes free in ${small}; nothing was written (--max-size sets the limit)`,
    ]);
    expect(await readdir(small)).toEqual([]);
  });

  it('a full disk fails with "no space left" and leaves no file, partial or final', async (ctx) => {
    if (!canMount) ctx.skip();
    const small = await mountTmpfs('size=1m');
    const r = await download('big.bin', small, '--max-size', '10M'); // past the free-space check
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/no space left on the device/);
    expect(await readdir(small)).toEqual([]);
  });

  it('a read-only folder fails with a clear line and writes nothing', async (ctx) => {
    if (!canMount) ctx.skip();
    const ro = await mountTmpfs('size=1m,ro');
    const r = await download('note.txt', ro);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([`peer: cannot write to folder ${ro}: the file system is read-only`]);
    expect(await readdir(ro)).toEqual([]);
  });
});

describe('an existing file', () => {
  it('with other content is kept, and the download refuses without --overwrite', async () => {
    const down = join(dir, 'down');
    await mkdir(down);
    await writeFile(join(down, 'note.txt'), 'my own note');
    const r = await download('note.txt', down);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('already exists with other content (use --overwrite to replace it)');
    expect(await readFile(join(down, 'note.txt'), 'utf8')).toBe('my own note');
    expect(await readdir(down)).toEqual(['note.txt']);

    const forced = await download('note.txt', down, '--overwrite');
    expect(forced.code, forced.stderr).toBe(0);
    expect(await readFile(join(down, 'note.txt'), 'utf8')).toBe('the real note');
  });

  it('with identical content is simply re-registered where it is served', async () => {
    const down = join(dir, 'down');
    await mkdir(down);
    await writeFile(join(down, 'note.txt'), 'the real note');
    const own = await ContentServer.listen({ library: new FileLibrary(down), port: 0, host: '127.0.0.1' });
    const served: unknown[] = [];
    content.on('event', (e) => served.push(e));
    try {
      const r = await run(BIN.peer, ['download', 'note.txt', '--dir', down, '--port', String(own.address().port), '--json', '--index', `127.0.0.1:${index.address().port}`]);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ alreadyHad: true, registered: true });
      expect(served).toEqual([]); // nothing was transferred
      const listing = await client.list();
      expect(listing.find((s) => s.port === own.address().port)?.names).toEqual(['note.txt']);
    } finally {
      await own.close();
    }
  });

  it('with identical content but nothing serving it, is not registered, and the reason is given', async () => {
    const down = join(dir, 'down');
    await mkdir(down);
    await writeFile(join(down, 'note.txt'), 'the real note');
    const r = await download('note.txt', down);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`not shared: nothing serves note.txt on port 9300 (run peer serve --dir ${down} --port 9300, or use --seed)`);
    expect((await client.list()).find((s) => s.port === 9300)).toBeUndefined();
  });

  it("is compared with the holder's own digest when the index has none", async () => {
    const holder = { port: content.address().port, addr: '', filename: 'note.txt' };
    await client.deregister(holder);
    await client.register(holder); // no sha256 this time
    const down = join(dir, 'down');
    await mkdir(down);
    await writeFile(join(down, 'note.txt'), 'the real note');
    const same = await download('note.txt', down, '--json');
    expect(same.code, same.stderr).toBe(0);
    expect(JSON.parse(same.stdout)).toMatchObject({ alreadyHad: true });

    await writeFile(join(down, 'note.txt'), 'the fake note');
    const other = await download('note.txt', down);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('already exists with other content');
  });
});
