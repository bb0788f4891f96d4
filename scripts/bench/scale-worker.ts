/**
 * Measures the index's registry in-process (run by scale.ts as its own process, with
 * --expose-gc so the heap can be settled before and after). Prints one JSON line.
 *
 *   node --expose-gc scale-worker.js memory --count 1000000 [--per-server 10] [--lookups 1000000]
 *       registers `count` registrations (distinct names, `per-server` names per content server,
 *       each server its own source address, every one with a sha256), as R datagrams through
 *       the handler, and reports RSS and heap growth per registration; then times
 *       registry.nextHolder and the whole handler for an S over random names
 *   node --expose-gc scale-worker.js memory --count 1000000 --redis redis://H:P --prefix P:
 *       the same through the store of `index-server --redis` (a ReplicatedStore on that Redis),
 *       every change sent to Redis (in rounds of 100,000, each drained) before it is measured
 *   node --expose-gc scale-worker.js listing --names 10000
 *       one content server with `names` names: the time to build the O sequence through the
 *       handler, and its number of PDUs
 */
import { performance } from 'node:perf_hooks';
import { createIndexHandler } from '../../src/index/handler.js';
import { ListStreamer } from '../../src/index/list-streamer.js';
import { Registry } from '../../src/index/registry.js';
import { TokenBuckets } from '../../src/index/token-buckets.js';
import type { RegistryStore } from '../../src/index/store.js';
import { encodeHolder, encodeSearch } from '../../src/protocol/index-messages.js';
import { BENCH_SHA256, benchName, median, parseArgs } from './measure.js';

const TTL_MS = 3_600_000;
const [mode] = process.argv.slice(2);
const args = parseArgs(process.argv.slice(3));
const redisUrl = typeof args.redis === 'string' ? args.redis : undefined;
// Through Redis, expiry times are absolute and must lie ahead: the clock's now, then fixed.
const NOW = redisUrl ? Date.now() : 1_000;
/** Changes sent to Redis before waiting for them to be drained (under the link's outbox limit). */
const DRAIN_EVERY = 100_000;

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

/** Settles the heap (several full GCs) and reads the memory counters. */
function settled(): NodeJS.MemoryUsage {
  for (let i = 0; i < 4; i++) gc!();
  return process.memoryUsage();
}

/** The address of content server `i` (distinct for up to 16 million servers). */
const serverAddr = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

/** Times `fn` over `count` calls in batches; returns the median ns per call. */
function timePerCall(count: number, fn: (i: number) => unknown): number {
  const batches = 5;
  const per = Math.max(1, Math.floor(count / batches));
  const samples: number[] = [];
  let sink = 0;
  for (let b = 0; b < batches; b++) {
    const t0 = performance.now();
    for (let i = 0; i < per; i++) if (fn(b * per + i)) sink++;
    samples.push(((performance.now() - t0) * 1e6) / per);
  }
  if (sink < 0) process.stdout.write(''); // keeps the results alive
  return median(samples);
}

async function openStore(count: number): Promise<RegistryStore> {
  const limits = { maxRegistrations: count + 1, maxPerSource: count + 1, maxPerPrefix: count + 1 };
  if (!redisUrl) return new Registry({ ttlMs: TTL_MS, ...limits });
  const { ReplicatedStore } = await import('../../src/index/replicated-store.js');
  return ReplicatedStore.open({ url: redisUrl, prefix: String(args.prefix ?? 'bench:'), ttlMs: TTL_MS, limits });
}

/** Waits until a replicated store has sent every change to Redis. */
async function drained(store: RegistryStore): Promise<void> {
  const pending = () => (store as { pending?: number }).pending ?? 0;
  while (pending() > 0) await new Promise((resolve) => setTimeout(resolve, 5));
}

async function memory(count: number, perServer: number, lookups: number): Promise<object> {
  // Opened first: the Redis client's fixed cost is not a cost per registration.
  const registry = await openStore(count);
  const before = settled();
  // Registered through the handler, from R datagrams as the UDP server receives them, so the
  // registry keeps the very strings the real server would (decoded from the PDUs).
  const handle = createIndexHandler({ registry });
  const pdu = Buffer.alloc(100);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const from = serverAddr(Math.floor(i / perServer));
    encodeHolder('R', { port: 9100, addr: '', filename: benchName(i), sha256: BENCH_SHA256 }, pdu);
    const { event } = handle(pdu, from, NOW);
    if (event?.type !== 'registered') throw new Error(`registration ${i} was ${JSON.stringify(event)}`);
    if (redisUrl && (i + 1) % DRAIN_EVERY === 0) await drained(registry);
  }
  await drained(registry);
  const registerNs = ((performance.now() - t0) * 1e6) / count;
  const after = settled();
  const grow = (k: keyof NodeJS.MemoryUsage) => (after[k] - before[k]) / count;

  // Random names, chosen before timing; an LCG keeps the order the same from run to run.
  const names: string[] = new Array(Math.min(lookups, 1 << 20));
  let x = 12345;
  for (let i = 0; i < names.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    names[i] = benchName(x % count);
  }
  const pdus = names.slice(0, 1 << 16).map((n) => encodeSearch(n));
  const nextHolderNs = timePerCall(lookups, (i) => registry.nextHolder(names[i % names.length], NOW + 1));
  const handlerSearchNs = timePerCall(Math.min(lookups, 500_000), (i) => handle(pdus[i % pdus.length], '127.0.0.1', NOW + 1).replies.length);
  return {
    mode: 'memory',
    count,
    perServer,
    registerNs,
    rssPerRegistration: grow('rss'),
    heapUsedPerRegistration: grow('heapUsed'),
    externalPerRegistration: grow('external'),
    arrayBuffersPerRegistration: grow('arrayBuffers'),
    rssTotal: after.rss,
    nextHolderNs,
    handlerSearchNs,
    size: registry.size,
    redis: redisUrl !== undefined,
  };
}

/**
 * The whole O answer for one server with `names` names. Long answers are produced by the
 * ListStreamer in slices (so the index keeps answering S meanwhile); this times one listing
 * from start to its last PDU, with no reply-rate limit, and counts its PDUs and bytes.
 */
async function listing(names: number): Promise<object> {
  const registry = new Registry({ ttlMs: TTL_MS, maxRegistrations: names + 1, maxPerSource: names + 1 });
  const addr = '10.0.0.1';
  for (let i = 0; i < names; i++) registry.register({ port: 9100, addr, filename: benchName(i), sha256: BENCH_SHA256 }, addr, NOW);
  const once = async () => {
    let pdus = 0;
    let bytes = 0;
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      const streamer = new ListStreamer({
        registry,
        replyBudget: new TokenBuckets({ perSecond: 1e12, burst: 1e12 }),
        maxJobs: 1,
        send: (pdu) => {
          pdus++;
          bytes += pdu.length;
        },
        onEnd: () => resolve(),
      });
      streamer.start(addr, addr, 9100, NOW + 1);
    });
    return { pdus, bytes, ms: performance.now() - t0 };
  };
  const first = await once();
  const ms: number[] = [];
  for (let i = 0; i < 10; i++) ms.push((await once()).ms);
  return { mode: 'listing', names, pdus: first.pdus, bytes: first.bytes, buildMs: median(ms), event: 'streamed' };
}

const result =
  mode === 'memory'
    ? await memory(Number(args.count ?? 1_000_000), Number(args['per-server'] ?? 10), Number(args.lookups ?? 1_000_000))
    : mode === 'listing'
      ? await listing(Number(args.names ?? 10_000))
      : undefined;
if (!result) {
  process.stderr.write('usage: scale-worker.js memory --count N | listing --names N\n');
  process.exit(1);
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0); // a replicated store's Redis connections would keep the process alive
