/**
 * Client failover in a cluster (real redis-server): a client given both indexes registers
 * through the first, and once the first is down, searches and refreshes through the second,
 * which has everything.
 */
import { afterEach, expect, it } from 'vitest';
import { IndexClient } from '../../src/peer/index-client.js';
import { closeAll, newPrefix, startIndex } from './cluster-helpers.js';
import { describeWithRedis, useRedisServer } from './redis-server.js';

describeWithRedis('client failover between indexes of one cluster', () => {
  const redis = useRedisServer();
  afterEach(closeAll);

  it('finds through the second index what it registered at the first, once the first is down', async () => {
    const prefix = newPrefix();
    const [a, b] = await Promise.all([startIndex(redis, prefix), startIndex(redis, prefix)]);
    const c = new IndexClient({ host: '127.0.0.1', port: a.port, failover: [{ host: '127.0.0.1', port: b.port }], timeoutMs: 200, tries: 6 });
    await c.register({ port: 7001, addr: '', filename: 'a.txt' });
    await a.close();
    expect(await c.search('a.txt')).toMatchObject({ addr: '127.0.0.1', port: 7001 });
    await c.register({ port: 7001, addr: '', filename: 'a.txt' }); // a refresh
    await c.deregister({ port: 7001, addr: '', filename: 'a.txt' });
    await expect(c.search('a.txt')).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
  });
});
