/**
 * An index that fell further behind than the change stream keeps (entries it had not read were
 * trimmed) finds the hole and reloads from the hash, with one line (real redis-server).
 */
import { afterEach, expect, it } from 'vitest';
import { newPrefix } from './cluster-helpers.js';
import { describeWithRedis, useRedisServer } from './redis-server.js';
import { closeStores, holder, openStore, redisClient, until, withProxy } from './store-helpers.js';

describeWithRedis('a follower behind the trimmed stream', () => {
  const redis = useRedisServer();
  afterEach(closeStores);

  it('reloads everything from the hash and logs one line', async () => {
    const prefix = newPrefix();
    await withProxy(redis.port, async (proxy) => {
      const a = await openStore(redis.url, prefix);
      const b = await openStore(proxy.url, prefix);
      const client = await redisClient(redis.url);
      const now = Date.now();
      for (const name of ['old', 'stays']) a.store.register(holder(name), '10.1.0.1', now);
      b.store.register(holder('mine'), '10.1.0.2', now);
      expect(await until(() => a.store.size === 3 && b.store.size === 3)).toBe(true);

      proxy.cut(); // b stops reading
      expect(await until(() => b.statuses.length > 0)).toBe(true);
      expect(a.store.deregister(holder('old'), '10.1.0.1', Date.now())).toBe('removed');
      a.store.register(holder('missed'), '10.1.0.1', Date.now());
      expect(await until(() => a.store.pending === 0)).toBe(true);
      await client.xtrim(`${prefix}changes`, 'MAXLEN', 0); // what b has not read is gone
      proxy.resume();
      expect(await until(() => /is back/.test(b.statuses.at(-1) ?? ''))).toBe(true);

      a.store.register(holder('after'), '10.1.0.1', Date.now());
      expect(await until(() => b.store.nextHolder('after', Date.now()) !== undefined)).toBe(true);
      const at = Date.now();
      expect(b.store.nextHolder('missed', at)).toMatchObject({ filename: 'missed' });
      expect(b.store.nextHolder('old', at)).toBeUndefined();
      expect(b.store.nextHolder('stays', at)).toMatchObject({ filename: 'stays' });
      expect(b.store.nextHolder('mine', at)).toMatchObject({ filename: 'mine' });
      const reloads = b.statuses.filter((s) => /fell behind/.test(s));
      expect(reloads).toHaveLength(1);
      expect(reloads[0]).toMatch(/2 change\(s\) trimmed unread\): reloaded 4 registration\(s\), dropped 1/);
    });
  });
});
