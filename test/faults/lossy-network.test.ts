/**
 * The CLI over a lossy, duplicating, reordering network: every index command completes at
 * 20% loss each way, and at 100% loss each one ends with its one-line error.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IndexServer } from '../../src/index/udp-server.js';
import { ContentServer } from '../../src/peer/content-server.js';
import { FileLibrary } from '../../src/peer/file-library.js';
import { UdpFaultProxy } from '../../scripts/lib/fault-proxy.js';
import { BIN, run } from '../../scripts/lib/processes.js';

let dir: string;
let index: IndexServer;
let content: ContentServer;
let proxy: UdpFaultProxy | undefined;
const extra: ContentServer[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peerdex-lossy-'));
  index = await IndexServer.listen({ port: 0, host: '127.0.0.1' });
  content = await ContentServer.listen({ library: new FileLibrary(join(dir, 'shared')), port: 0, host: '127.0.0.1' });
});

afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  await content.close();
  for (const s of extra.splice(0)) await s.close();
  await index.close();
  await rm(dir, { recursive: true, force: true });
});

/** Generous tries: at 20% loss each way one try fails with p = 0.36, ten in a row with p < 4e-5. */
const lossyFlags = (port: number) => ['--index', `127.0.0.1:${port}`, '--tries', '10', '--timeout', '100', '--json'];

async function peer(args: string[]) {
  const r = await run(BIN.peer, args, 60_000);
  return { ...r, json: r.code === 0 ? JSON.parse(r.stdout) : undefined };
}

describe('at 20% datagram loss each way (plus duplicates and reordering)', () => {
  it('register, search, list, download and deregister all complete', async () => {
    proxy = await UdpFaultProxy.start({
      target: { host: '127.0.0.1', port: index.address().port },
      toServer: { drop: 0.2, duplicate: 0.05, reorder: 0.05 },
      toClient: { drop: 0.2, duplicate: 0.05, reorder: 0.05 },
      seed: 42,
    });
    const flags = lossyFlags(proxy.port);
    const shared = join(dir, 'shared');
    await mkdir(shared);
    const body = randomBytes(300_000);
    await writeFile(join(shared, 'lossy.bin'), body);
    const contentPort = String(content.address().port);

    // Several servers and names, so the O sequence spans many datagrams.
    for (const name of ['a.txt', 'b.txt', 'c.txt', 'd.txt', 'e.txt', 'lossy.bin']) {
      if (name !== 'lossy.bin') await writeFile(join(shared, name), name);
      const r = await peer(['register', join(shared, name), '--port', contentPort, ...flags]);
      expect(r.code, r.stderr).toBe(0);
    }
    // Two more content servers of the same folder, so the listing has three servers.
    const more = await Promise.all([0, 1].map(() => ContentServer.listen({ library: new FileLibrary(shared), port: 0, host: '127.0.0.1' })));
    extra.push(...more);
    const [p1, p2] = more.map((s) => s.address().port);
    for (const port of [p1, p2]) {
      const r = await peer(['register', join(shared, 'a.txt'), '--port', String(port), ...flags]);
      expect(r.code, r.stderr).toBe(0);
    }

    const found = await peer(['search', 'lossy.bin', ...flags]);
    expect(found.code, found.stderr).toBe(0);
    expect(found.json.port).toBe(content.address().port);

    const listed = await peer(['list', ...flags]);
    expect(listed.code, listed.stderr).toBe(0);
    const byPort = new Map(listed.json.servers.map((s: { port: number; names: string[] }) => [s.port, [...s.names].sort()]));
    expect(byPort.get(content.address().port)).toEqual(['a.txt', 'b.txt', 'c.txt', 'd.txt', 'e.txt', 'lossy.bin']);
    expect(byPort.get(p1)).toEqual(['a.txt']);
    expect(byPort.get(p2)).toEqual(['a.txt']);

    const got = await peer(['download', 'lossy.bin', '--dir', join(dir, 'down'), '--port', '9200', ...flags]);
    expect(got.code, got.stderr).toBe(0);
    expect(
      createHash('sha256')
        .update(await readFile(join(dir, 'down', 'lossy.bin')))
        .digest('base64url'),
    ).toBe(got.json.sha256);

    const gone = await peer(['deregister', 'a.txt', '--port', String(p1), ...flags]);
    expect(gone.code, gone.stderr).toBe(0);
    expect(proxy.stats.dropped).toBeGreaterThan(0);
    expect(proxy.stats.duplicated + proxy.stats.reordered).toBeGreaterThan(0);
  });
});

describe('at 100% loss', () => {
  it.each([
    ['search', ['search', 'x.txt']],
    ['list', ['list']],
    ['register', ['register', 'FILE', '--port', 'CONTENT']],
    ['deregister', ['deregister', 'x.txt', '--port', '9100']],
    ['download', ['download', 'x.txt', '--dir', 'DIR']],
  ])('%s ends with a one-line "did not answer" error and exit 1', async (_what, args) => {
    proxy = await UdpFaultProxy.start({ target: { host: '127.0.0.1', port: index.address().port }, toServer: { drop: 1 } });
    await mkdir(join(dir, 'shared'), { recursive: true });
    await writeFile(join(dir, 'shared', 'x.txt'), 'x'); // served, so register gets as far as the index
    const fill: Record<string, string> = { FILE: join(dir, 'shared', 'x.txt'), DIR: join(dir, 'down'), CONTENT: String(content.address().port) };
    const filled = args.map((a) => fill[a] ?? a);
    const r = await run(BIN.peer, [...filled, '--index', `127.0.0.1:${proxy.port}`, '--tries', '3', '--timeout', '50'], 20_000);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([`peer: index 127.0.0.1:${proxy.port} did not answer after 3 tries`]);
    expect(index.stats.received).toBe(0);
  });
});
