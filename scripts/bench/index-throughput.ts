/**
 * Index throughput: the real `index-server` (a child process) against a bare Node dgram server
 * (baseline-dgram-server.ts), both driven by the same load generator in a third process.
 *
 * The index is first filled with `names` registrations (R, spread over 1000 content ports, so
 * 1000 servers); then, in alternated runs, each server gets (1) a window of S requests in
 * flight for random names: replies per second, and (2) S requests at a fixed rate: latency
 * percentiles. The CPU time each server used while measured is sampled from /proc.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { spawnFastSender, type FastSender } from './fast-sender.js';
import { monotonicUs, type TimeWindow } from './profile.js';
import { benchScript, finish, peerdexBins, median, procCpuSeconds, procMemory, spawnNode, startNodeService, type BenchService } from './measure.js';

export interface IndexBenchOptions {
  runs: number;
  names: number;
  /** Seconds measured per throughput and per latency run. */
  duration: number;
  window: number;
  sockets: number;
  /** Requests per second of the latency runs. */
  rate: number;
  /** When set, the index server runs under --cpu-prof and writes its profile here. */
  profileDir?: string | undefined;
  /** The C load generator for the throughput runs; the Node one when undefined. */
  fast?: FastSender | undefined;
  log: (line: string) => void;
}

export interface ThroughputRun {
  perSecond: number;
  lost: number;
  /** Server CPU used while measured, as a share of one core. */
  serverCpu: number;
  generatorCpu: number;
}

export interface LatencyRun {
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  lost: number;
  answered: number;
  serverCpu: number;
}

export interface IndexSideResult {
  throughput: ThroughputRun[];
  latency: LatencyRun[];
  medianPerSecond: number;
  medianP50Ms: number;
  medianP99Ms: number;
  medianServerCpu: number;
  medianLatencyCpu: number;
}

export interface IndexBenchResult {
  names: number;
  fillPerSecond: number;
  fillLost: number;
  indexRssAfterFill: number;
  peerdex: IndexSideResult;
  baseline: IndexSideResult;
  /** peerdex / baseline replies per second (medians). */
  ratio: number;
  window: number;
  sockets: number;
  rate: number;
  duration: number;
  /** Which load generator drove the throughput runs. */
  generator: 'c' | 'node';
}

interface GeneratorOutput {
  result: Record<string, number | string>;
  serverCpu: number;
  generatorCpu: number;
}

/** Runs the load generator against `server` and samples both processes' CPU while it measures. */
export async function generate(server: BenchService, args: string[], timeoutMs: number, started?: ChildProcess): Promise<GeneratorOutput> {
  const gen = started ?? spawnNode(benchScript('load-generator.js'), ['--port', String(server.port), ...args]);
  let s0 = NaN;
  let g0 = NaN;
  let t0 = NaN;
  let serverCpu = NaN;
  let generatorCpu = NaN;
  gen.stdout!.on('data', (d: Buffer) => {
    const text = d.toString();
    if (text.includes('measure-start')) {
      s0 = procCpuSeconds(server.child.pid!);
      g0 = procCpuSeconds(gen.pid!);
      t0 = performance.now();
    }
    if (text.includes('measure-end')) {
      const seconds = (performance.now() - t0) / 1000;
      serverCpu = (procCpuSeconds(server.child.pid!) - s0) / seconds;
      generatorCpu = (procCpuSeconds(gen.pid!) - g0) / seconds;
    }
  });
  const out = await finish(gen, timeoutMs);
  if (out.code !== 0) throw new Error(`load generator ${started ? '(C) ' : ''}failed (exit ${out.code ?? out.signal}): ${out.stderr.trim()}`);
  const last = out.stdout.trim().split('\n').at(-1)!;
  return { result: JSON.parse(last) as Record<string, number | string>, serverCpu, generatorCpu };
}

function summarize(throughput: ThroughputRun[], latency: LatencyRun[]): IndexSideResult {
  return {
    throughput,
    latency,
    medianPerSecond: median(throughput.map((r) => r.perSecond)),
    medianP50Ms: median(latency.map((r) => r.p50Ms)),
    medianP99Ms: median(latency.map((r) => r.p99Ms)),
    medianServerCpu: median(throughput.map((r) => r.serverCpu)),
    medianLatencyCpu: median(latency.map((r) => r.serverCpu)),
  };
}

export async function benchIndex(o: IndexBenchOptions): Promise<IndexBenchResult> {
  const flags = o.profileDir ? ['--cpu-prof', '--cpu-prof-dir', join(o.profileDir, 'index-server')] : [];
  const index = await startNodeService(peerdexBins().index, indexArgs(o.names), /listening on udp [^ ]*:(\d+)/, { flags });
  const baseline = await startNodeService(benchScript('baseline-dgram-server.js'), [], /listening on udp port (\d+)/);
  try {
    o.log(`  filling the index with ${o.names.toLocaleString('en')} registrations`);
    const filled = await generate(index, ['--mode', 'fill', '--names', String(o.names), '--window', '256', '--sockets', '4'], 120_000);
    if (filled.result.registered !== o.names) throw new Error(`filling the index failed: ${JSON.stringify(filled.result)}`);
    const indexRssAfterFill = procMemory(index.child.pid!)?.rss ?? NaN;

    const common = ['--names', String(o.names), '--sockets', String(o.sockets), '--warmup', '1', '--duration', String(o.duration)];
    const tp = { peerdex: [] as ThroughputRun[], baseline: [] as ThroughputRun[] };
    const lat = { peerdex: [] as LatencyRun[], baseline: [] as LatencyRun[] };
    const timeoutMs = (o.duration + 30) * 1000;
    for (let run = 0; run < o.runs; run++) {
      // Alternate which server goes first, so drifting background load hits both alike.
      const order = run % 2 === 0 ? (['peerdex', 'baseline'] as const) : (['baseline', 'peerdex'] as const);
      for (const side of order) {
        const server = side === 'peerdex' ? index : baseline;
        const t = await throughputRun(server, o, timeoutMs);
        tp[side].push({ perSecond: Number(t.result.perSecond), lost: Number(t.result.lost), serverCpu: t.serverCpu, generatorCpu: t.generatorCpu });
        o.log(
          `  run ${run + 1} ${side.padEnd(8)} throughput ${Math.round(Number(t.result.perSecond)).toLocaleString('en')} replies/s (server cpu ${pct(t.serverCpu)}, generator cpu ${pct(t.generatorCpu)}, lost ${t.result.lost})`,
        );
      }
      for (const side of order) {
        const server = side === 'peerdex' ? index : baseline;
        const l = await generate(server, ['--mode', 'latency', '--rate', String(o.rate), ...common], timeoutMs);
        const r = l.result;
        lat[side].push({ p50Ms: Number(r.p50Ms), p99Ms: Number(r.p99Ms), p999Ms: Number(r.p999Ms), lost: Number(r.lost), answered: Number(r.answered), serverCpu: l.serverCpu });
        o.log(
          `  run ${run + 1} ${side.padEnd(8)} at ${o.rate.toLocaleString('en')}/s: p50 ${ms(Number(r.p50Ms))} p99 ${ms(Number(r.p99Ms))} (server cpu ${pct(l.serverCpu)}, lost ${r.lost})`,
        );
      }
    }
    const peerdex = summarize(tp.peerdex, lat.peerdex);
    const base = summarize(tp.baseline, lat.baseline);
    return {
      names: o.names,
      fillPerSecond: Number(filled.result.perSecond),
      fillLost: Number(filled.result.lost),
      indexRssAfterFill,
      peerdex,
      baseline: base,
      ratio: peerdex.medianPerSecond / base.medianPerSecond,
      window: o.window,
      sockets: o.sockets,
      rate: o.rate,
      duration: o.duration,
      generator: o.fast ? 'c' : 'node',
    };
  } finally {
    await Promise.all([index.stop(), baseline.stop()]);
  }
}

/** One throughput run (a window of S in flight for random names): the C sender if built, else Node's. */
export async function throughputRun(
  server: BenchService,
  o: Pick<IndexBenchOptions, 'names' | 'window' | 'sockets' | 'duration' | 'fast'>,
  timeoutMs: number,
): Promise<GeneratorOutput> {
  if (o.fast) return generate(server, [], timeoutMs, await spawnFastSender(o.fast, server.port, { names: o.names, window: o.window, warmup: 1, duration: o.duration }));
  const args = [
    '--mode',
    'throughput',
    '--window',
    String(o.window),
    '--names',
    String(o.names),
    '--sockets',
    String(o.sockets),
    '--warmup',
    '1',
    '--duration',
    String(o.duration),
  ];
  return generate(server, args, timeoutMs);
}

/**
 * index-server arguments for a benchmark of `names` registrations, all sent from 127.0.0.1:
 * caps above that, no per-source rate limit, a TTL longer than the run.
 */
export function indexArgs(names: number, extra: string[] = []): string[] {
  const cap = String(Math.max(2_000_000, names + 1));
  return [
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--quiet',
    '--ttl',
    '3600',
    '--max-per-source',
    cap,
    '--max-per-prefix',
    cap,
    '--max-registrations',
    cap,
    '--register-rate',
    '0',
    ...extra,
  ];
}

export const pct = (x: number) => `${Math.round(x * 100)}%`;
const ms = (x: number) => `${x.toFixed(2)} ms`;

/**
 * One more pass for profiling only: the index (filled) and the bare server each take one
 * throughput run under `node --cpu-prof`; the profiles land in DIR/index-server and
 * DIR/baseline-dgram. Kept apart from the measured runs, which run without the profiler.
 */
export async function profileIndex(o: IndexBenchOptions & { profileDir: string }): Promise<{ index: TimeWindow; baseline: TimeWindow }> {
  const prof = (name: string) => ['--cpu-prof', '--cpu-prof-dir', join(o.profileDir, name)];
  const index = await startNodeService(peerdexBins().index, indexArgs(o.names), /listening on udp [^ ]*:(\d+)/, { flags: prof('index-server') });
  const baseline = await startNodeService(benchScript('baseline-dgram-server.js'), [], /listening on udp port (\d+)/, { flags: prof('baseline-dgram') });
  try {
    await generate(index, ['--mode', 'fill', '--names', String(o.names), '--window', '256', '--sockets', '4'], 120_000);
    const windows: TimeWindow[] = [];
    for (const server of [index, baseline]) {
      const fromUs = monotonicUs();
      await throughputRun(server, o, (o.duration + 30) * 1000);
      windows.push({ fromUs, toUs: monotonicUs() });
    }
    return { index: windows[0], baseline: windows[1] };
  } finally {
    await Promise.all([index.stop(), baseline.stop()]);
  }
}

export interface LargeIndexLatency {
  names: number;
  fillSeconds: number;
  indexRss: number;
  p50Ms: number;
  p99Ms: number;
  lost: number;
  rate: number;
}

/** S latency over UDP at a fixed rate against an index filled with `names` registrations. */
export async function latencyAtSize(o: { names: number; rate: number; duration: number; log: (line: string) => void }): Promise<LargeIndexLatency> {
  const index = await startNodeService(peerdexBins().index, indexArgs(o.names), /listening on udp [^ ]*:(\d+)/);
  try {
    o.log(`  filling an index with ${o.names.toLocaleString('en')} registrations over UDP`);
    const filled = await generate(
      index,
      ['--mode', 'fill', '--names', String(o.names), '--window', '256', '--sockets', '4', '--servers', String(Math.ceil(o.names / 10))],
      600_000,
    );
    if (filled.result.registered !== o.names) throw new Error(`filling the index failed: ${JSON.stringify(filled.result)}`);
    const indexRss = procMemory(index.child.pid!)?.rss ?? NaN;
    const l = await generate(
      index,
      ['--mode', 'latency', '--names', String(o.names), '--rate', String(o.rate), '--sockets', '4', '--warmup', '1', '--duration', String(o.duration)],
      (o.duration + 30) * 1000,
    );
    const r = {
      names: o.names,
      fillSeconds: Number(filled.result.seconds),
      indexRss,
      p50Ms: Number(l.result.p50Ms),
      p99Ms: Number(l.result.p99Ms),
      lost: Number(l.result.lost),
      rate: o.rate,
    };
    o.log(
      `  S at ${o.rate.toLocaleString('en')}/s over ${o.names.toLocaleString('en')} registrations: p50 ${ms(r.p50Ms)} p99 ${ms(r.p99Ms)} (lost ${r.lost}; index RSS ${(indexRss / 2 ** 20).toFixed(0)} MiB)`,
    );
    return r;
  } finally {
    await index.stop();
  }
}
