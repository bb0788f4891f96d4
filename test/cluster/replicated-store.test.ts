import { ReplicatedStore } from '../../src/index/replicated-store.js';
import { describeStoreContract } from '../index/store-contract.js';
import { newPrefix } from './cluster-helpers.js';
import { describeWithRedis, useRedisServer } from './redis-server.js';

describeWithRedis('ReplicatedStore against a real redis-server', () => {
  const redis = useRedisServer();

  describeStoreContract('ReplicatedStore (Redis)', {
    make: (options) => ReplicatedStore.open({ url: redis.url, prefix: newPrefix(), ttlMs: options.ttlMs, limits: options }),
    close: (store) => (store as ReplicatedStore).close(),
  });
});
