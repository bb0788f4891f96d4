/**
 * `--index` with a list, through the real bins: every command succeeds through the second
 * index when the first is down (a closed port) or hangs (a SIGSTOPped index-server), and
 * `peer serve` registers and refreshes through it.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closedUdpPort } from '../helpers/closed-port.js';
import { Fixtures, PEER_BIN } from '../helpers/peer-fixtures.js';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

/** An index-server that is running but stopped (SIGSTOP): it takes datagrams and never answers. */
async function stoppedIndex(): Promise<string> {
  const { child, addr } = await fx.indexBin();
  child.proc.kill('SIGSTOP');
  return addr;
}

describe('peer commands with --index a,b', () => {
  it.each([
    ['a closed port', async () => `127.0.0.1:${await closedUdpPort()}`],
    ['a SIGSTOPped index-server', stoppedIndex],
  ])('succeed through the second index when the first is %s', async (_what, first) => {
    const down = await first();
    const { addr } = await fx.indexBin();
    const list = `${down},${addr}`;
    const dir = await fx.tempDir();
    await writeFile(join(dir, 'paper.pdf'), 'pdf bytes');
    const port = String((await fx.contentServer(dir)).port); // register checks that it is served

    const reg = await fx.run(PEER_BIN, ['register', join(dir, 'paper.pdf'), '--port', port, '--index', list, '--json']);
    expect(reg.stderr).toBe('');
    expect(JSON.parse(reg.stdout)).toMatchObject({ registered: 'paper.pdf', index: list });
    const found = await fx.run(PEER_BIN, ['search', 'paper.pdf', '--index', list, '--json']);
    expect(JSON.parse(found.stdout)).toMatchObject({ filename: 'paper.pdf', port: Number(port) });
    const listed = await fx.run(PEER_BIN, ['list', '--index', list, '--json']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain('paper.pdf');
    const dereg = await fx.run(PEER_BIN, ['deregister', 'paper.pdf', '--port', port, '--index', list]);
    expect(dereg.stdout).toBe(`deregistered "paper.pdf" (content port ${port}) from index ${list}\n`);
  });

  it('peer serve registers and refreshes through the second index while the first hangs', async () => {
    const down = await stoppedIndex();
    const { addr } = await fx.indexBin(['--ttl', '2']);
    const dir = await fx.tempDir();
    await writeFile(join(dir, 'kept.txt'), 'kept');
    const serve = await fx.serveBin(dir, `${down},${addr}`, ['--refresh', '0.6']);
    expect(serve.child.stdout).toContain(`index ${down},${addr}`);
    // Past two TTLs of the index, the registration is still there: the refreshes reach it.
    await new Promise((resolve) => setTimeout(resolve, 4500));
    const found = await fx.run(PEER_BIN, ['search', 'kept.txt', '--index', addr, '--json']);
    expect(JSON.parse(found.stdout)).toMatchObject({ filename: 'kept.txt', port: serve.port });
    serve.child.kill('SIGINT');
    expect((await serve.child.waitExit()).code).toBe(0);
  }, 20_000);

  it('names a bad list in one line', async () => {
    const r = await fx.run(PEER_BIN, ['search', 'x', '--index', '127.0.0.1:9000,,127.0.0.1:9001', '--tries', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('peer: --index must be host:port or a comma-separated list of them (like 127.0.0.1:9000,127.0.0.1:9001), got "127.0.0.1:9000,,127.0.0.1:9001"\n');
  });
});
