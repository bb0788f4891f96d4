/**
 * Propagation delay: from one index's A to another index answering S for the same holder
 * (loopback, real redis-server). Prints p50/p99; the bound here is loose (CI machines are
 * shared), the yardstick in DESIGN.md is 50 ms at p99.
 */
import { afterEach, expect, it } from 'vitest';
import { ask, client, closeAll, newPrefix, startIndex } from './cluster-helpers.js';
import { describeWithRedis, useRedisServer } from './redis-server.js';

const SAMPLES = 200;

describeWithRedis('propagation delay between two indexes', () => {
  const redis = useRedisServer();
  afterEach(closeAll);

  it(`measures ${SAMPLES} registrations from A at one index to S at another`, async () => {
    const prefix = newPrefix();
    const [a, b] = await Promise.all([startIndex(redis, prefix), startIndex(redis, prefix)]);
    const c = await client();
    const delays: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      expect(await ask(c, a.port, 'R', `9100;;p${i}`)).toBe(`A p${i}`);
      const acked = performance.now();
      while ((await ask(c, b.port, 'S', `p${i}`)).startsWith('E')) {
        if (performance.now() - acked > 2000) throw new Error(`p${i} did not reach the other index within 2 s`);
      }
      delays.push(performance.now() - acked);
    }
    delays.sort((x, y) => x - y);
    const at = (q: number) => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))];
    console.log(`propagation A -> S at another index (${SAMPLES} samples): p50 ${at(0.5).toFixed(2)} ms, p99 ${at(0.99).toFixed(2)} ms, max ${at(1).toFixed(2)} ms`);
    expect(at(0.99)).toBeLessThan(250);
  });
});
