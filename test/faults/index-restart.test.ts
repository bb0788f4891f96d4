/**
 * Soft state both ways: a running `peer serve` is registered again after the index restarts,
 * and a crashed peer's registrations leave the index once their TTL runs out.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { IndexServer } from '../../src/index/udp-server.js';
import { IndexClient } from '../../src/peer/index-client.js';
import { BIN, startService, type Service } from '../../scripts/lib/processes.js';

let dir: string;
let index: IndexServer | undefined;
let serve: Service | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peerdex-restart-'));
  await mkdir(join(dir, 'shared'));
  await writeFile(join(dir, 'shared', 'kept.txt'), 'still here');
});

afterEach(async () => {
  await serve?.stop('SIGKILL');
  await index?.close();
  await rm(dir, { recursive: true, force: true });
});

async function startServe(indexPort: number, refreshSeconds: string): Promise<Service> {
  return startService(
    BIN.peer,
    [
      'serve',
      '--dir',
      join(dir, 'shared'),
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--index',
      `127.0.0.1:${indexPort}`,
      '--refresh',
      refreshSeconds,
      '--settle',
      '0',
      '--tries',
      '3',
      '--timeout',
      '100',
    ],
    /registered for tcp port (\d+)/,
  );
}

/** Polls `check` every 50 ms until it holds or `ms` pass; returns whether it held. */
async function eventually(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const finds = (client: IndexClient, name: string) => () =>
  client.search(name).then(
    () => true,
    () => false,
  );

it('peer serve registers everything again after the index restarts (within one refresh period)', async () => {
  index = await IndexServer.listen({ port: 0, host: '127.0.0.1' });
  const port = index.address().port;
  serve = await startServe(port, '0.5');
  const client = new IndexClient({ host: '127.0.0.1', port, timeoutMs: 100, tries: 2 });
  expect(await finds(client, 'kept.txt')()).toBe(true);

  await index.close();
  index = await IndexServer.listen({ port, host: '127.0.0.1' }); // empty: it lost all state
  expect(index.registry.size).toBe(0);
  // One refresh period is 0.5 s; allow generously for a loaded test machine.
  expect(await eventually(finds(client, 'kept.txt'), 5_000)).toBe(true);
  const holder = await client.search('kept.txt');
  expect(holder.port).toBe(serve.port);
});

it("a crashed peer's registrations leave the index within the TTL", async () => {
  index = await IndexServer.listen({ port: 0, host: '127.0.0.1', ttlSeconds: 0.6 });
  const port = index.address().port;
  serve = await startServe(port, '0.2');
  const client = new IndexClient({ host: '127.0.0.1', port, timeoutMs: 100, tries: 2 });
  expect(await finds(client, 'kept.txt')()).toBe(true);

  await serve.stop('SIGKILL'); // no deregistration: it simply vanishes
  // Still listed while refreshed registrations live, then gone once the TTL has passed.
  expect(await eventually(async () => !(await finds(client, 'kept.txt')()), 3_000)).toBe(true);
  expect(await client.list()).toEqual([]);
});
