/**
 * Cluster: the real `index-server` with --redis against the same without it, on a real
 * redis-server (scripts/lib/redis-server.ts), on loopback:
 *
 *   R/s      filling each with `names` registrations (acknowledged; with --redis also until
 *            every change is in Redis, read by HLEN)
 *   S/s      alternated throughput runs against both (the C sender when it was built)
 *   delay    from one index's A to another index of the prefix answering S for it: p50, p99
 *   memory   RSS per registration at `rssCount` registrations, in-process (scale-worker.js),
 *            through the replicated store vs the plain registry; Redis's own memory per
 *            registration (INFO used_memory) for the capacity plan
 */
import { randomUUID } from 'node:crypto';
import { IndexClient } from '../../src/peer/index-client.js';
import { startRedis, type LocalRedis } from '../lib/redis-server.js';
import type { FastSender } from './fast-sender.js';
import { generate, indexArgs, pct, throughputRun } from './index-throughput.js';
import { benchScript, finish, median, peerdexBins, percentile, spawnNode, startNodeService, type BenchService } from './measure.js';

export interface ClusterBenchOptions {
  names: number;
  runs: number;
  duration: number;
  window: number;
  sockets: number;
  /** Registrations of the memory comparison (0: skip it). */
  rssCount: number;
  propagationSamples: number;
  fast?: FastSender | undefined;
  log: (line: string) => void;
}

export interface ClusterBenchResult {
  names: number;
  generator: 'c' | 'node';
  fill: { plainPerSecond: number; redisAckedPerSecond: number; redisStoredPerSecond: number };
  /** redisAcked / plain. */
  rRatio: number;
  s: { plain: number[]; redis: number[]; medianPlain: number; medianRedis: number; ratio: number };
  propagation: { samples: number; p50Ms: number; p99Ms: number; maxMs: number };
  memory?: { count: number; plainRss: number; redisRss: number; redisServerBytes: number; storedPerSecond: number } | undefined;
}

const INDEX_LINE = /listening on udp [^ ]*:(\d+)/;

export async function benchCluster(o: ClusterBenchOptions): Promise<ClusterBenchResult> {
  const redis = await startRedis();
  const { Redis } = await import('ioredis');
  const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  const prefix = `bench-${randomUUID().slice(0, 8)}:`;
  const started: BenchService[] = [];
  const start = async (extra: string[] = []) => {
    const s = await startNodeService(peerdexBins().index, indexArgs(o.names + 10_000, extra), INDEX_LINE);
    started.push(s);
    return s;
  };
  try {
    o.log(`  redis-server on ${redis.url}; index P without --redis, indexes Q and F with --redis (prefix ${prefix})`);
    const shared = ['--redis', redis.url, '--redis-prefix', prefix];
    const [plain, q, f] = [await start(), await start(shared), await start(shared)];

    const fillArgs = ['--mode', 'fill', '--names', String(o.names), '--window', '256', '--sockets', '4'];
    const pFill = await generate(plain, fillArgs, 120_000);
    const t0 = performance.now();
    const qFill = await generate(q, fillArgs, 120_000);
    for (const r of [pFill, qFill]) if (r.result.registered !== o.names) throw new Error(`filling an index failed: ${JSON.stringify(r.result)}`);
    while ((await client.hlen(`${prefix}regs`)) < o.names) {
      if (performance.now() - t0 > 300_000) throw new Error('the registrations did not all reach Redis within 5 minutes');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const fill = {
      plainPerSecond: Number(pFill.result.perSecond),
      redisAckedPerSecond: Number(qFill.result.perSecond),
      redisStoredPerSecond: (o.names * 1000) / (performance.now() - t0),
    };
    o.log(
      `  R: ${int(fill.plainPerSecond)}/s without --redis, ${int(fill.redisAckedPerSecond)}/s acknowledged with it (${int(fill.redisStoredPerSecond)}/s until all were in Redis)`,
    );

    const s = { plain: [] as number[], redis: [] as number[] };
    const timeoutMs = (o.duration + 30) * 1000;
    for (let run = 0; run < o.runs; run++) {
      const order = run % 2 === 0 ? (['plain', 'redis'] as const) : (['redis', 'plain'] as const);
      for (const side of order) {
        const t = await throughputRun(side === 'plain' ? plain : q, o, timeoutMs);
        s[side].push(Number(t.result.perSecond));
        o.log(
          `  run ${run + 1} ${side === 'plain' ? 'without --redis' : 'with --redis   '} S ${int(Number(t.result.perSecond))} replies/s (server cpu ${pct(t.serverCpu)}, generator cpu ${pct(t.generatorCpu)}, lost ${t.result.lost})`,
        );
      }
    }
    const [mp, mr] = [median(s.plain), median(s.redis)];

    const propagation = await propagationDelay(q.port, f.port, o.propagationSamples);
    o.log(`  propagation, A at Q to S answered at F (${propagation.samples} samples): p50 ${ms(propagation.p50Ms)}, p99 ${ms(propagation.p99Ms)}, max ${ms(propagation.maxMs)}`);
    await Promise.all(started.splice(0).map((x) => x.stop()));

    const memory = o.rssCount > 0 ? await memoryAtScale(o, redis, client) : undefined;
    return {
      names: o.names,
      generator: o.fast ? 'c' : 'node',
      fill,
      rRatio: fill.redisAckedPerSecond / fill.plainPerSecond,
      s: { ...s, medianPlain: mp, medianRedis: mr, ratio: mr / mp },
      propagation,
      memory,
    };
  } finally {
    await Promise.all(started.map((x) => x.stop()));
    client.disconnect();
    await redis.stop();
  }
}

/** Registers a new name at one index, then asks the other until it answers: ms from A to that S. */
async function propagationDelay(fromPort: number, toPort: number, samples: number): Promise<ClusterBenchResult['propagation']> {
  const at = new IndexClient({ host: '127.0.0.1', port: fromPort, timeoutMs: 500, tries: 4 });
  const other = new IndexClient({ host: '127.0.0.1', port: toPort, timeoutMs: 500, tries: 4 });
  const delays: number[] = [];
  for (let i = 0; i < samples; i++) {
    const filename = `propagation-${i}.bin`;
    await at.register({ port: 9100, addr: '', filename });
    const acked = performance.now();
    for (;;) {
      const found = await other.search(filename).then(
        () => true,
        (err: Error & { code?: string }) => (err.code === 'ERR_NOT_FOUND' ? false : Promise.reject(err)),
      );
      if (found) break;
      if (performance.now() - acked > 5000) throw new Error(`${filename} did not reach the other index within 5 s`);
    }
    delays.push(performance.now() - acked);
  }
  delays.sort((a, b) => a - b);
  return { samples, p50Ms: percentile(delays, 50), p99Ms: percentile(delays, 99), maxMs: delays.at(-1)! };
}

/** RSS per registration in-process, plain registry vs replicated store; Redis's memory for the latter. */
async function memoryAtScale(
  o: ClusterBenchOptions,
  redis: LocalRedis,
  client: { info(section: string): Promise<string>; flushall(): Promise<unknown> },
): Promise<ClusterBenchResult['memory']> {
  await client.flushall();
  const worker = async (extra: string[]) => {
    const child = spawnNode(benchScript('scale-worker.js'), ['memory', '--count', String(o.rssCount), '--per-server', '10', '--lookups', '100000', ...extra], {
      flags: ['--expose-gc', '--max-old-space-size=4096'],
    });
    const out = await finish(child, 600_000);
    if (out.code !== 0) throw new Error(`scale worker failed (exit ${out.code ?? out.signal}): ${out.stderr.trim()}`);
    return JSON.parse(out.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
  };
  const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await client.info('memory'))?.[1]);
  const base = await usedMemory();
  const plain = await worker([]);
  const t0 = performance.now();
  const replicated = await worker(['--redis', redis.url, '--prefix', 'rss:']);
  const storedPerSecond = (o.rssCount * 1000) / (performance.now() - t0);
  const redisServerBytes = ((await usedMemory()) - base) / o.rssCount;
  const m = { count: o.rssCount, plainRss: plain.rssPerRegistration, redisRss: replicated.rssPerRegistration, redisServerBytes, storedPerSecond };
  o.log(
    `  ${int(m.count)} registrations: ${int(m.plainRss)} B RSS each without --redis, ${int(m.redisRss)} B with it; Redis holds ${int(m.redisServerBytes)} B per registration (hash, expiry set and change stream); ${int(storedPerSecond)}/s written through`,
  );
  return m;
}

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en') : 'n/a');
const ms = (x: number) => `${x.toFixed(2)} ms`;
