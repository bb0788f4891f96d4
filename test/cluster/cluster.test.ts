/**
 * Several index servers sharing one real redis-server (see redis-server.ts): propagation,
 * loading on start, expiry, the address rules across indexes, and Redis going away.
 */
import { afterEach, expect, it } from 'vitest';
import { BIN, run, startService } from '../../scripts/lib/processes.js';
import { ask, client, closeAll, eventually, newPrefix, startIndex, type ClusterIndex } from './cluster-helpers.js';
import { describeWithRedis, useRedisServer } from './redis-server.js';
import { rawPdu, type UdpClient } from '../helpers/udp.js';

const holds = (c: UdpClient, index: { port: number }, name: string, port = 9100) => ask(c, index.port, 'S', name, 300).then((r) => r === `S ${port};127.0.0.1;${name}`);
const allHold = async (c: UdpClient, indexes: ClusterIndex[], names: string[]) => {
  for (const index of indexes) for (const name of names) if (!(await holds(c, index, name))) return false;
  return true;
};
const noneHold = async (c: UdpClient, indexes: ClusterIndex[], name: string) => {
  for (const index of indexes) if ((await ask(c, index.port, 'S', name, 300)).startsWith('S')) return false;
  return true;
};

describeWithRedis('index cluster through Redis', () => {
  it('index-server --redis with no Redis there exits 1 with one line', async () => {
    const r = await run(BIN.index, ['--port', '0', '--redis', 'redis://127.0.0.1:1'], 15_000);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^index-server: cannot use redis redis:\/\/127\.0\.0\.1:1: .*is redis-server running\?\)/);
  });

  const redis = useRedisServer();
  afterEach(closeAll);

  it('a registration at one index is answered by the other two', async () => {
    const prefix = newPrefix();
    const indexes = await Promise.all([0, 1, 2].map(() => startIndex(redis, prefix)));
    const c = await client();
    for (const [i, index] of indexes.entries()) expect(await ask(c, index.port, 'R', `9100;;from-${i}`)).toBe(`A from-${i}`);
    expect(await eventually(() => allHold(c, indexes, ['from-0', 'from-1', 'from-2']))).toBe(true);
    // Another prefix is another registry.
    const other = await startIndex(redis, newPrefix());
    expect(await ask(c, other.port, 'S', 'from-0')).toMatch(/^E 3;/);
  });

  it('a restarted index (kill -9) has every live registration before its first answer', async () => {
    const prefix = newPrefix();
    const args = ['--port', '0', '--host', '127.0.0.1', '--redis', redis.url, '--redis-prefix', prefix];
    const portLine = /index listening on udp 127\.0\.0\.1:(\d+)/;
    const first = await startService(BIN.index, args, portLine);
    const a = await startIndex(redis, prefix);
    const c = await client();
    const names = Array.from({ length: 50 }, (_, i) => `n${i}`);
    for (const name of names) expect(await ask(c, a.port, 'R', `9100;;${name}`)).toBe(`A ${name}`);
    await eventually(() => holds(c, first, 'n49'));
    first.child.kill('SIGKILL');
    await first.stop();
    expect(await ask(c, a.port, 'R', '9100;;late')).toBe('A late'); // while it is down
    expect(await eventually(() => Promise.resolve(a.store.pending === 0))).toBe(true); // 'late' is in Redis
    const again = await startService(BIN.index, args, portLine);
    try {
      expect(again.lines.some((l) => /loaded 51 registration\(s\)/.test(l))).toBe(true);
      for (const name of [...names, 'late']) expect(await holds(c, again, name)).toBe(true);
    } finally {
      await again.stop();
    }
  });

  it('expiry is seen by every index at the same absolute time', async () => {
    const prefix = newPrefix();
    const indexes = await Promise.all([0, 1, 2].map(() => startIndex(redis, prefix, 0.6)));
    const c = await client();
    expect(await ask(c, indexes[0].port, 'R', '9100;;short')).toBe('A short');
    expect(await eventually(() => allHold(c, indexes, ['short']))).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 650));
    expect(await noneHold(c, indexes, 'short')).toBe(true);
  });

  it('T from another address is refused at another index; T from the owner removes it everywhere', async () => {
    const prefix = newPrefix();
    const [a, b, cIndex] = await Promise.all([0, 1, 2].map(() => startIndex(redis, prefix)));
    const owner = await client('127.0.0.1');
    const stranger = await client('127.0.0.2');
    expect(await ask(owner, a.port, 'R', '9100;;mine')).toBe('A mine');
    expect(await eventually(() => holds(owner, b, 'mine'))).toBe(true);
    expect(await ask(stranger, b.port, 'T', '9100;127.0.0.1;mine')).toMatch(/^E 5;/);
    expect(await holds(owner, a, 'mine')).toBe(true);
    expect(await ask(owner, b.port, 'T', '9100;127.0.0.1;mine')).toBe('A mine');
    expect(await eventually(() => noneHold(owner, [a, cIndex], 'mine'))).toBe(true);
  });

  it("E 1 at one index removes that sender's registrations at every index", async () => {
    const prefix = newPrefix();
    const indexes = await Promise.all([0, 1, 2].map(() => startIndex(redis, prefix)));
    const [a, b] = indexes;
    const leaver = await client('127.0.0.1');
    const stayer = await client('127.0.0.2');
    for (const name of ['x1', 'x2']) expect(await ask(leaver, a.port, 'R', `9100;;${name}`)).toBe(`A ${name}`);
    expect(await ask(stayer, a.port, 'R', '9100;;kept')).toBe('A kept');
    expect(await eventually(() => allHold(leaver, indexes, ['x1', 'x2']))).toBe(true);
    await leaver.send(rawPdu('E', '1;bye'), b.port);
    expect(await eventually(async () => (await noneHold(leaver, indexes, 'x1')) && (await noneHold(leaver, indexes, 'x2')))).toBe(true);
    for (const index of indexes) expect(await ask(stayer, index.port, 'S', 'kept')).toBe('S 9100;127.0.0.2;kept');
  });

  it('keeps answering while Redis is down and loses nothing when it comes back empty', async () => {
    const prefix = newPrefix();
    const [a, b] = await Promise.all([0, 1].map(() => startIndex(redis, prefix)));
    const c = await client();
    expect(await ask(c, a.port, 'R', '9100;;before')).toBe('A before');
    expect(await eventually(() => holds(c, b, 'before'))).toBe(true);
    await redis.stop();
    const during = ['d0', 'd1', 'd2', 'd3', 'e0', 'e1', 'e2', 'e3'];
    for (const name of during) expect(await ask(c, (name < 'e' ? a : b).port, 'R', `9100;;${name}`)).toBe(`A ${name}`);
    expect(await holds(c, a, 'before')).toBe(true); // reads go on from memory
    expect(await eventually(() => Promise.resolve(a.statuses.length > 0 && b.statuses.length > 0))).toBe(true);
    expect(a.statuses[0]).toMatch(/unreachable/);
    await redis.restart(); // empty: no persistence
    expect(await eventually(() => allHold(c, [a, b], ['before', ...during]), 5000)).toBe(true);
    expect(a.statuses.at(-1)).toMatch(/is back/);
    const late = await startIndex(redis, prefix);
    expect(await allHold(c, [late], ['before', ...during])).toBe(true);
  });
});
