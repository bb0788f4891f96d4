/**
 * IndexClient with a list of indexes: each retry goes to the next one, a command succeeds as
 * long as one answers, and the next request starts at the index that answered last.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { IndexClient } from '../../src/peer/index-client.js';
import { closedUdpPort } from '../helpers/closed-port.js';
import { Fixtures } from '../helpers/peer-fixtures.js';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

/** A UDP socket on 127.0.0.1 that receives and never answers (an index that hangs). */
async function silentIndex(): Promise<{ port: number; received: () => number }> {
  const socket = dgram.createSocket('udp4');
  let count = 0;
  socket.on('message', () => count++);
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  fx.track(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { port: socket.address().port, received: () => count };
}

const client = (ports: number[], options: { timeoutMs?: number; tries?: number } = {}) =>
  new IndexClient({ host: '127.0.0.1', port: ports[0], failover: ports.slice(1).map((port) => ({ host: '127.0.0.1', port })), timeoutMs: 200, tries: 6, ...options });

const holder = { port: 7001, addr: '', filename: 'a.txt' };

describe('failover across a list of indexes', () => {
  it('names the whole list in its label and keeps host and port of the first', () => {
    const c = client([9000, 9001]);
    expect(c.label).toBe('127.0.0.1:9000,127.0.0.1:9001');
    expect([c.host, c.port]).toEqual(['127.0.0.1', 9000]);
    expect(c.withTiming({ tries: 2 }).label).toBe(c.label);
  });

  it('goes on to the second index at once when nothing listens on the first', async () => {
    const dead = await closedUdpPort();
    const { port } = await fx.index();
    const c = client([dead, port], { timeoutMs: 2000 });
    const t0 = performance.now();
    await c.register(holder);
    expect((await c.search('a.txt')).port).toBe(7001);
    expect(await c.list()).toEqual([{ addr: '127.0.0.1', port: 7001, names: ['a.txt'] }]);
    expect(performance.now() - t0).toBeLessThan(1500); // never waited out a 2 s timeout
  });

  it('goes on to the second index after one timeout when the first hangs, then starts there', async () => {
    const hung = await silentIndex();
    const { port } = await fx.index();
    const c = client([hung.port, port]);
    const t0 = performance.now();
    await c.register(holder);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150);
    expect(hung.received()).toBe(1);
    // The next requests, also through withTiming() copies, start at the index that answered.
    await c.search('a.txt');
    await c.withTiming({ tries: 2, timeoutMs: 100 }).deregister(holder);
    expect(hung.received()).toBe(1);
  });

  it('gets a listing from the index that answers when the first hangs', async () => {
    const hung = await silentIndex();
    const { port } = await fx.index();
    await client([port]).register(holder);
    expect(await client([hung.port, port]).list()).toEqual([{ addr: '127.0.0.1', port: 7001, names: ['a.txt'] }]);
  });

  it('skips an index whose host does not resolve', async () => {
    const { port } = await fx.index();
    const c = new IndexClient({ host: 'no-such-host.invalid', port: 9000, failover: [{ host: '127.0.0.1', port }], timeoutMs: 200, tries: 4 });
    await c.register(holder);
    expect((await c.search('a.txt')).port).toBe(7001);
  });

  it('says nothing is listening when every index refuses', async () => {
    const [a, b] = [await closedUdpPort(), await closedUdpPort()];
    const err = await client([a, b], { timeoutMs: 50 })
      .search('a.txt')
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_CONNECTION', message: `nothing is listening on UDP 127.0.0.1:${a},127.0.0.1:${b} (are the index servers running?)` });
  });

  it('alternates between indexes that hang and names them all when the tries run out', async () => {
    const [a, b] = [await silentIndex(), await silentIndex()];
    const err = await client([a.port, b.port], { timeoutMs: 20, tries: 5 })
      .search('a.txt')
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_TIMEOUT', message: `none of the indexes 127.0.0.1:${a.port},127.0.0.1:${b.port} answered after 5 tries` });
    expect([a.received(), b.received()]).toEqual([3, 2]);
  });

  it('asks every index at least once, whatever --tries says', async () => {
    const hung = await silentIndex();
    const { port } = await fx.index();
    await client([hung.port, port], { tries: 1 }).register(holder);
  });

  it('names the index that refused a request', async () => {
    const dead = await closedUdpPort();
    const { port } = await fx.index();
    const err = await client([dead, port])
      .register({ ...holder, addr: '10.1.2.3' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_REMOTE', message: expect.stringMatching(new RegExp(`^index 127.0.0.1:${port} refused register: E 5`)) });
  });

  it('leave() tells every index of the list', async () => {
    const [one, two] = [await fx.index(), await fx.index()];
    await client([one.port]).register(holder);
    await client([two.port]).register(holder);
    await client([one.port, two.port]).leave();
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const { port } of [one, two]) expect(await client([port]).list()).toEqual([]);
  });
});
