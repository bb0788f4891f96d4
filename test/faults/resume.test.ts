/**
 * Transfers cut mid-file: the partial data is kept, the download resumes (from the same or
 * another holder) with a ranged D, and only a verified file ever gets its final name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { IndexServer } from '../../src/index/udp-server.js';
import { ContentServer, type ContentServerEvent } from '../../src/peer/content-server.js';
import { FileLibrary } from '../../src/peer/file-library.js';
import { IndexClient } from '../../src/peer/index-client.js';
import { TcpCutProxy } from '../../scripts/lib/fault-proxy.js';
import { BIN, run } from '../../scripts/lib/processes.js';

const SIZE = 5 * 1024 * 1024 + 123;
const CUT = 2 * 1024 * 1024 + 777;

let dir: string;
let shared: string;
let down: string;
let body: Buffer;
let digest: string;
let index: IndexServer;
let content: ContentServer;
let client: IndexClient;
let served: ContentServerEvent[];
const proxies: TcpCutProxy[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peerdex-resume-'));
  shared = join(dir, 'shared');
  down = join(dir, 'down');
  await mkdir(shared);
  body = randomBytes(SIZE);
  digest = createHash('sha256').update(body).digest('base64url');
  await writeFile(join(shared, 'big.bin'), body);
  index = await IndexServer.listen({ port: 0, host: '127.0.0.1' });
  content = await ContentServer.listen({ library: new FileLibrary(shared), port: 0, host: '127.0.0.1' });
  served = [];
  content.on('event', (e) => served.push(e));
  client = new IndexClient({ host: '127.0.0.1', port: index.address().port, timeoutMs: 100, tries: 3 });
});

afterEach(async () => {
  for (const p of proxies.splice(0)) await p.close();
  await content.close();
  await index.close();
  await rm(dir, { recursive: true, force: true });
});

const holder = (port: number) => ({ port, addr: '', filename: 'big.bin', sha256: digest });

async function cutProxy(): Promise<TcpCutProxy> {
  const p = await TcpCutProxy.start({ host: '127.0.0.1', port: content.address().port }, CUT);
  proxies.push(p);
  return p;
}

// --wait 0: once every holder has failed, give up at once (the tests cut the only holder).
const download = (...extra: string[]) =>
  run(BIN.peer, ['download', 'big.bin', '--dir', down, '--no-register', '--json', '--index', `127.0.0.1:${index.address().port}`, '--tries', '3', '--timeout', '100', ...extra]);
const servedBytes = () => served.reduce((n, e) => n + (e.type === 'served' ? e.bytes : 0), 0);

it('an interrupted download keeps its partial data and the next run continues from it', async () => {
  const proxy = await cutProxy();
  await client.register(holder(proxy.port));

  const first = await download('--wait', '0');
  expect(first.code).toBe(1);
  const error = JSON.parse(first.stdout).error;
  expect(error.message).toMatch(/\(last: holder 127\.0\.0\.1:\d+ closed the connection\) \(\d+ bytes kept: run the same download again to resume\)/);
  expect(error.holders).toEqual([expect.objectContaining({ holder: `127.0.0.1:${proxy.port}`, state: 'failed' })]);
  expect(await readdir(down)).not.toContain('big.bin');
  const kept: number = error.keptBytes;
  expect(kept).toBeGreaterThan(0);
  expect(kept).toBeLessThan(CUT);
  expect(kept % (256 * 1024)).toBe(0); // whole pieces only
  expect((await stat(join(down, '.peerdex-big.bin.part'))).size).toBe(SIZE); // written in place, sparse

  // The cut holder is gone; the real one takes over.
  await client.deregister(holder(proxy.port));
  await client.register(holder(content.address().port));
  served = [];
  const second = await download();
  expect(second.code, second.stderr).toBe(0);
  expect(JSON.parse(second.stdout).resumedFrom).toBe(kept);
  const ranges = served.filter((e) => e.type === 'served');
  expect(Math.min(...ranges.map((e) => e.offset))).toBe(kept); // nothing kept was asked again
  expect(servedBytes()).toBe(SIZE - kept);
  expect((await readFile(join(down, 'big.bin'))).equals(body)).toBe(true);
  expect(await readdir(down)).toEqual(['big.bin']);
});

it('when a holder dies mid-transfer the download resumes from another holder', async () => {
  await client.register(holder(content.address().port));
  const proxy = await cutProxy();
  await client.register(holder(proxy.port)); // newest first: the dying holder is asked first
  const r = await download();
  expect(r.code, r.stderr).toBe(0);
  const result = JSON.parse(r.stdout);
  expect(result.holders).toContain(`127.0.0.1:${content.address().port}`);
  expect(proxy.cuts).toBeGreaterThanOrEqual(1);
  const resumed = served.find((e) => e.type === 'served' && e.offset > 0);
  expect(resumed, 'the second holder was asked for ranges, not the whole file').toBeDefined();
  expect((await readFile(join(down, 'big.bin'))).equals(body)).toBe(true);
});

it('with no other holder the download fails clearly and leaves nothing under the final name', async () => {
  const proxy = await cutProxy();
  await client.register(holder(proxy.port));
  const r = await run(BIN.peer, ['download', 'big.bin', '--dir', down, '--no-register', '--wait', '0', '--index', `127.0.0.1:${index.address().port}`]);
  expect(r.code).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(
    /^peer: could not download "big\.bin": 1 holder tried, none could send it \(last: holder 127\.0\.0\.1:\d+ closed the connection\) \(\d+ bytes kept: run the same download again to resume\)$/m,
  );
  expect(await readdir(down)).not.toContain('big.bin');
});

it('partial data of other content is thrown away, never mixed in', async () => {
  await client.register(holder(content.address().port));
  await mkdir(down);
  await writeFile(join(down, '.peerdex-big.bin.part'), randomBytes(1000));
  await writeFile(join(down, '.peerdex-big.bin.meta'), JSON.stringify({ sha256: 'A'.repeat(42) + 'A', size: SIZE }));
  const r = await download();
  expect(r.code, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout).resumedFrom).toBe(0); // the 1000 bytes on disk were not used
  expect(servedBytes()).toBe(SIZE);
  expect((await readFile(join(down, 'big.bin'))).equals(body)).toBe(true);
});

it('corrupted partial data is caught by the digest, found by asking the holder again, and repaired', async () => {
  await client.register(holder(content.address().port));
  await mkdir(down);
  const bad = Buffer.from(body.subarray(0, 1024 * 1024)); // four whole 256 KiB pieces
  bad[100] ^= 0xff;
  await writeFile(join(down, '.peerdex-big.bin.part'), bad);
  await writeFile(join(down, '.peerdex-big.bin.meta'), JSON.stringify({ sha256: digest, size: SIZE }));
  const r = await download();
  expect(r.code, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout).notes).toContain('1 piece(s) from an earlier run did not match and were fetched again');
  expect((await readFile(join(down, 'big.bin'))).equals(body)).toBe(true);
  expect(await readdir(down)).toEqual(['big.bin']);
});

it('a holder whose content is not what the index announced is never downloaded from', async () => {
  // The index announces a digest that the holder's bytes do not match.
  await client.register({ ...holder(content.address().port), sha256: 'B'.repeat(43) });
  await mkdir(down);
  const r = await download('--wait', '0');
  expect(r.code).toBe(1);
  expect(JSON.parse(r.stdout).error.code).toBe('ERR_INTEGRITY');
  expect(await readdir(down)).toEqual([]);
});
