/**
 * Scale: the registry at 100,000 and 1,000,000 registrations, measured in-process in a child
 * (scale-worker.ts, run with --expose-gc): RSS and heap per registration, the time of
 * registry.nextHolder and of the whole handler for an S at that size, and the cost of the O
 * listing of one content server holding 10,000 names.
 */
import { benchScript, finish, spawnNode } from './measure.js';

export interface ScalePoint {
  count: number;
  perServer: number;
  registerNs: number;
  rssPerRegistration: number;
  heapUsedPerRegistration: number;
  arrayBuffersPerRegistration: number;
  rssTotal: number;
  nextHolderNs: number;
  handlerSearchNs: number;
}

export interface ScaleResult {
  points: ScalePoint[];
  /** RSS growth per registration between the two sizes (fixed costs cancel out). */
  marginalRssPerRegistration: number;
  listing: { names: number; pdus: number; bytes: number; buildMs: number };
}

export interface ScaleOptions {
  counts: number[];
  listingNames: number;
  log: (line: string) => void;
}

async function worker(args: string[]): Promise<Record<string, number>> {
  // A fresh process per measurement, so one size's garbage does not count against the next.
  const child = spawnNode(benchScript('scale-worker.js'), args, { flags: ['--expose-gc', '--max-old-space-size=4096'] });
  const out = await finish(child, 300_000);
  if (out.code !== 0) throw new Error(`scale worker ${args.join(' ')} failed (exit ${out.code ?? out.signal}): ${out.stderr.trim()}`);
  return JSON.parse(out.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
}

export async function benchScale(o: ScaleOptions): Promise<ScaleResult> {
  const points: ScalePoint[] = [];
  for (const count of o.counts) {
    const r = await worker(['memory', '--count', String(count), '--per-server', '10', '--lookups', '1000000']);
    const point: ScalePoint = {
      count,
      perServer: r.perServer,
      registerNs: r.registerNs,
      rssPerRegistration: r.rssPerRegistration,
      heapUsedPerRegistration: r.heapUsedPerRegistration,
      arrayBuffersPerRegistration: r.arrayBuffersPerRegistration,
      rssTotal: r.rssTotal,
      nextHolderNs: r.nextHolderNs,
      handlerSearchNs: r.handlerSearchNs,
    };
    points.push(point);
    o.log(
      `  ${count.toLocaleString('en')} registrations: ${point.rssPerRegistration.toFixed(0)} B RSS each (heap ${point.heapUsedPerRegistration.toFixed(0)} B + typed arrays ${point.arrayBuffersPerRegistration.toFixed(0)} B); nextHolder ${(point.nextHolderNs / 1000).toFixed(2)} us, handler S ${(point.handlerSearchNs / 1000).toFixed(2)} us`,
    );
  }
  const [a, b] = [points[0], points.at(-1)!];
  const marginalRssPerRegistration = b.count > a.count ? (b.rssTotal - a.rssTotal) / (b.count - a.count) : NaN;
  const l = await worker(['listing', '--names', String(o.listingNames)]);
  const listing = { names: o.listingNames, pdus: l.pdus, bytes: l.bytes, buildMs: l.buildMs };
  o.log(
    `  O listing of one server with ${o.listingNames.toLocaleString('en')} names: ${listing.pdus} PDUs (${(listing.bytes / 1024).toFixed(0)} KiB), built in ${listing.buildMs.toFixed(2)} ms`,
  );
  return { points, marginalRssPerRegistration, listing };
}
