/**
 * The outbox of local changes (real redis-server): sent in batches and in order, never dropped
 * while Redis is up, and after an outage that overflowed it, Redis is brought up to date
 * (removals made during the outage included) by the write-back.
 */
import { afterEach, expect, it } from 'vitest';
import { newPrefix } from './cluster-helpers.js';
import { describeWithRedis, useRedisServer } from './redis-server.js';
import { closeStores, holder, openStore, redisClient, registerMany, until, withProxy } from './store-helpers.js';

const OVER_THE_BOUND = 210_000; // the outbox keeps 200,000 changes through an outage

describeWithRedis('the outbox of a replicated store', () => {
  const redis = useRedisServer();
  afterEach(closeStores);

  it('sends a burst of changes in a few script calls, in order', async () => {
    const prefix = newPrefix();
    const [a, b] = [await openStore(redis.url, prefix), await openStore(redis.url, prefix)];
    const client = await redisClient(redis.url);
    await client.config('RESETSTAT');
    registerMany(a.store, 'burst', 2000);
    // In the same turn: removed, then registered again from another source.
    const now = Date.now();
    expect(a.store.deregister(holder('burst7'), '10.1.0.1', now)).toBe('removed');
    expect(a.store.register(holder('burst7'), '10.1.0.2', now)).toBe('added');
    expect(await until(() => a.store.pending === 0)).toBe(true);
    const stats = await client.info('commandstats');
    const calls = [...stats.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThanOrEqual(8); // 2,002 changes, up to 512 a call
    expect(await client.hlen(`${prefix}regs`)).toBe(2000);
    expect(await client.hget(`${prefix}regs`, '10.1.0.1;9100;burst7')).toMatch(/^10\.1\.0\.2;/);
    expect(await until(() => b.store.size === 2000)).toBe(true);
    expect([...b.store.entries(Date.now())].find((e) => e.holder.filename === 'burst7')?.from).toBe('10.1.0.2');
  });

  it(`drops nothing while Redis is up, even ${OVER_THE_BOUND.toLocaleString('en')} changes at once`, async () => {
    const prefix = newPrefix();
    const a = await openStore(redis.url, prefix);
    const client = await redisClient(redis.url);
    registerMany(a.store, 'up', OVER_THE_BOUND);
    expect(await until(() => a.store.pending === 0, 60_000)).toBe(true);
    expect(await client.hlen(`${prefix}regs`)).toBe(OVER_THE_BOUND);
    expect(a.statuses).toEqual([]);
  }, 90_000);

  it('after an outage that overflowed the outbox, Redis and the other indexes are brought up to date', async () => {
    const prefix = newPrefix();
    await withProxy(redis.port, async (proxy) => {
      const a = await openStore(proxy.url, prefix);
      const b = await openStore(redis.url, prefix);
      const client = await redisClient(redis.url);
      const now = Date.now();
      for (const name of ['kept', 'removed', 'again']) a.store.register(holder(name), '10.1.0.1', now);
      for (const name of ['left-1', 'left-2']) a.store.register(holder(name, '10.9.9.9'), '10.9.9.9', now);
      expect(await until(() => b.store.size === 5)).toBe(true);

      proxy.cut();
      expect(await until(() => a.statuses.length > 0)).toBe(true);
      expect(a.statuses[0]).toMatch(/unreachable/);
      registerMany(a.store, 'during', OVER_THE_BOUND); // more than the outbox keeps
      // After the overflow: a T, an E 1, and a T followed by a new R of the same holder.
      const later = Date.now();
      expect(a.store.deregister(holder('removed'), '10.1.0.1', later)).toBe('removed');
      expect(a.store.leave('10.9.9.9')).toHaveLength(2);
      expect(a.store.deregister(holder('again'), '10.1.0.1', later)).toBe('removed');
      expect(a.store.register(holder('again'), '10.1.0.1', later)).toBe('added');
      proxy.resume();

      expect(await until(() => a.store.pending === 0 && /is back/.test(a.statuses.at(-1) ?? ''), 60_000)).toBe(true);
      const regs = `${prefix}regs`;
      expect(await client.hlen(regs)).toBe(OVER_THE_BOUND + 2);
      for (const gone of ['10.1.0.1;9100;removed', '10.9.9.9;9100;left-1', '10.9.9.9;9100;left-2']) expect(await client.hexists(regs, gone)).toBe(0);
      for (const live of ['10.1.0.1;9100;kept', '10.1.0.1;9100;again', `10.1.0.1;9100;during${OVER_THE_BOUND - 1}`]) expect(await client.hexists(regs, live)).toBe(1);
      expect(await until(() => b.store.size === OVER_THE_BOUND + 2, 60_000)).toBe(true);
      const now2 = Date.now();
      expect(b.store.nextHolder('removed', now2)).toBeUndefined();
      expect(b.store.nextHolder('left-1', now2)).toBeUndefined();
      expect(b.store.nextHolder('again', now2)).toMatchObject({ filename: 'again' });
    });
  }, 120_000);
});
