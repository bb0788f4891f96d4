/**
 * A removal made during a Redis outage wins everywhere once Redis is back, even when the other
 * indexes' write-back of the same registration (they still held it) reaches the stream first.
 */
import { afterEach, expect, it } from 'vitest';
import { newPrefix } from './cluster-helpers.js';
import { describeWithRedis, useRedisServer } from './redis-server.js';
import { closeStores, holder, openStore, until } from './store-helpers.js';

describeWithRedis('a removal during a Redis outage', () => {
  const redis = useRedisServer();
  afterEach(closeStores);

  it('is not undone by the write-backs of indexes that still held the registration', async () => {
    const prefix = newPrefix();
    const [a, b, c] = [await openStore(redis.url, prefix), await openStore(redis.url, prefix), await openStore(redis.url, prefix)];
    // Last refreshed 5 s before the outage (a peer refreshes every 30 s): the write-backs of
    // f1 and f2 are older than their removal, by more than replication can delay a removal.
    const now = Date.now() - 5000;
    for (const name of ['f1', 'f2', 'kept']) a.store.register(holder(name), '10.1.0.1', now);
    expect(await until(() => b.store.size === 3 && c.store.size === 3)).toBe(true);

    await redis.stop(); // all three lose Redis
    expect(await until(() => a.statuses.length > 0 && b.statuses.length > 0 && c.statuses.length > 0)).toBe(true);
    const later = Date.now();
    expect(b.store.deregister(holder('f1'), '10.1.0.1', later)).toBe('removed');
    expect(b.store.deregister(holder('f2'), '10.1.0.1', later)).toBe('removed');
    await redis.restart(); // empty: every index writes back what it holds

    const back = (s: { statuses: string[] }) => /is back/.test(s.statuses.at(-1) ?? '');
    expect(await until(() => back(a) && back(b) && back(c) && a.store.pending + b.store.pending + c.store.pending === 0, 30_000)).toBe(true);
    const names = (s: typeof a) => [...s.store.entries(Date.now())].map((e) => e.holder.filename).sort();
    expect(await until(() => [a, b, c].every((s) => names(s).join() === 'kept'), 10_000)).toBe(true);
  }, 60_000);
});
