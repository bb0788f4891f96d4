/**
 * `npm run bench`: peerdex against bare-Node baselines, on loopback, bounded in time.
 *
 *   npm run bench -- [--size 1GiB] [--runs 3] [--only transfer,index,http,scale,swarm,cluster] [--duration 4]
 *                    [--names 100000] [--rate 20000] [--window 256] [--sockets 4]
 *                    [--counts 100000,1000000] [--profile] [--udp-scale] [--out docs/benchmarks.md]
 *                    [--swarm-size 200MiB] [--rss-count 1000000] [--no-write] [--timeout 20]
 *
 * Every option can also be given as PEERDEX_BENCH_<NAME> (PEERDEX_BENCH_SIZE=256MiB). Prints a
 * table, rewrites the generated section of docs/benchmarks.md, and stops every process it
 * started, also on Ctrl-C, an error or the overall timeout (minutes).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { buildFastSender } from './fast-sender.js';
import { redisInstalled, INSTALL_REDIS } from '../lib/redis-server.js';
import { benchCluster, type ClusterBenchResult } from './cluster.js';
import { benchIndexHttp, type IndexHttpBenchResult } from './index-http.js';
import { benchIndex, latencyAtSize, profileIndex, type IndexBenchResult, type LargeIndexLatency } from './index-throughput.js';
import { BENCH_DIR, formatSize, parseArgs, parseSize, stopAllChildren } from './measure.js';
import { formatProfile, summarizeProfiles, type TimeWindow } from './profile.js';
import { consoleTable, writeReport, type BenchReport } from './report.js';
import { benchScale, type ScaleResult } from './scale.js';
import { benchSwarm, type SwarmBenchResult } from './swarm.js';
import { benchTransfer, type TransferBenchResult } from './transfer.js';

const argv = parseArgs(process.argv.slice(2));
const opt = (name: string, fallback: string): string => {
  const v = argv[name] ?? process.env[`PEERDEX_BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  return v === undefined || v === true ? fallback : String(v);
};
const flag = (name: string): boolean => argv[name] === true || argv[name] === 'true' || process.env[`PEERDEX_BENCH_${name.toUpperCase().replace(/-/g, '_')}`] === '1';

const root = resolve(BENCH_DIR, '..', '..', '..');
const options = {
  size: parseSize(opt('size', '1GiB')),
  runs: Math.max(1, Number(opt('runs', '3'))),
  only: new Set(opt('only', 'transfer,index,http,scale,swarm,cluster').split(',')),
  duration: Number(opt('duration', '4')),
  names: Number(opt('names', '100000')),
  rate: Number(opt('rate', '20000')),
  window: Number(opt('window', '256')),
  sockets: Number(opt('sockets', '4')),
  counts: opt('counts', '100000,1000000').split(',').map(Number),
  listingNames: Number(opt('listing-names', '10000')),
  profile: flag('profile'),
  /** Also fill an index with the largest of --counts over UDP and measure S latency there. */
  udpScale: flag('udp-scale'),
  /** File size of the swarm benchmark (4 capped holders vs 1; client memory with 8 holders). */
  swarmSize: parseSize(opt('swarm-size', '200MiB')),
  /** Registrations of the cluster part's memory comparison, --redis vs without (0: skip it). */
  rssCount: Number(opt('rss-count', '1000000')),
  out: resolve(root, opt('out', 'docs/benchmarks.md')),
  write: !flag('no-write'),
  timeoutMin: Number(opt('timeout', '20')),
};

const log = (line: string) => process.stdout.write(`${line}\n`);
let work: string | undefined;
/** Set once a signal or the timeout stops the run: what fails after that is not news. */
let stopping = false;

async function cleanup(): Promise<void> {
  await stopAllChildren();
  if (work) await rm(work, { recursive: true, force: true });
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    stopping = true;
    log(`\n${sig}: stopping every benchmark process`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const deadline = setTimeout(() => {
    stopping = true;
    log(`\nbenchmark still running after ${options.timeoutMin} min: stopping`);
    void cleanup().finally(() => process.exit(1));
  }, options.timeoutMin * 60_000);
  deadline.unref();

  const startedAt = new Date();
  const loadBefore = os.loadavg();
  work = await mkdtemp(join(os.tmpdir(), 'peerdex-bench-'));
  const profileDir = options.profile ? join(work, 'profiles') : undefined;
  log(`peerdex benchmarks: node ${process.version}, ${os.cpus().length} cores, load ${loadBefore.map((x) => x.toFixed(2)).join(' ')}; work folder ${work}`);

  let transfer: TransferBenchResult | undefined;
  let index: IndexBenchResult | undefined;
  let indexHttp: IndexHttpBenchResult | undefined;
  let scale: ScaleResult | undefined;
  let udpScale: LargeIndexLatency | undefined;
  let swarm: SwarmBenchResult | undefined;
  let cluster: ClusterBenchResult | undefined;
  let clusterSkipped: string | undefined;
  let indexWindows: { index: TimeWindow; baseline: TimeWindow } | undefined;
  if (options.only.has('transfer')) {
    log(`\n[transfer] ${formatSize(options.size)}, ${options.runs} alternated runs: peer download from peer serve vs a bare Node pipe`);
    transfer = await benchTransfer({ size: options.size, runs: options.runs, work, profileDir, log });
  }
  // The S load generator: C when the machine can build it (fast enough not to be the limit).
  const needsSender = options.only.has('index') || options.only.has('http') || options.only.has('cluster');
  const { sender: fast, why: generatorNote } = needsSender ? buildFastSender(work) : { sender: undefined, why: '' };
  if (needsSender) log(`S load generator: ${generatorNote}`);
  if (options.only.has('index')) {
    log(`\n[index] ${options.names.toLocaleString('en')} names, ${options.runs} alternated runs of ${options.duration} s: index-server vs a bare Node dgram server`);
    const o = { runs: options.runs, names: options.names, duration: options.duration, window: options.window, sockets: options.sockets, rate: options.rate, fast, log };
    index = await benchIndex(o);
    if (profileDir) {
      log('  profiling one more throughput run of each');
      indexWindows = await profileIndex({ ...o, profileDir });
    }
  }
  if (options.only.has('http')) {
    log(
      `\n[http] index-server --http with /metrics scraped every second vs without: ${options.names.toLocaleString('en')} names, ${options.runs} alternated S runs of ${options.duration} s`,
    );
    indexHttp = await benchIndexHttp({ runs: options.runs, names: options.names, duration: options.duration, window: options.window, sockets: options.sockets, fast, log });
  }
  if (options.only.has('scale')) {
    log(`\n[scale] registry in-process at ${options.counts.map((c) => c.toLocaleString('en')).join(' and ')} registrations`);
    scale = await benchScale({ counts: options.counts, listingNames: options.listingNames, log });
    if (options.udpScale) {
      udpScale = await latencyAtSize({ names: Math.max(...options.counts), rate: options.rate, duration: options.duration, log });
    }
  }
  if (options.only.has('swarm')) {
    log(`\n[swarm] ${formatSize(options.swarmSize)}: peer download from several peer serve holders at once vs from one`);
    swarm = await benchSwarm({ size: options.swarmSize, runs: options.runs, work, log });
  }

  if (options.only.has('cluster')) {
    if (redisInstalled()) {
      log(
        `\n[cluster] index-server with --redis vs without: ${options.names.toLocaleString('en')} names, ${options.runs} alternated S runs of ${options.duration} s, propagation, memory at ${options.rssCount.toLocaleString('en')}`,
      );
      const o = {
        names: options.names,
        runs: options.runs,
        duration: options.duration,
        window: options.window,
        sockets: options.sockets,
        rssCount: options.rssCount,
        propagationSamples: 500,
        fast,
        log,
      };
      cluster = await benchCluster(o);
    } else {
      clusterSkipped = INSTALL_REDIS;
      log(`\n[cluster] skipped: ${INSTALL_REDIS}`);
    }
  }

  const profiles = [];
  if (profileDir) {
    // Server profiles are cut to the profiled download or load run; clients are whole processes.
    const tw = transfer?.profileWindows;
    const parts: [string, string, TimeWindow | undefined][] = [
      ['peerdex-client', 'peer download (client process, start to exit)', undefined],
      ['peerdex-server', 'peer serve (content server) during that download', tw?.peerdex],
      ['baseline-client', 'bare pipe client (start to exit)', undefined],
      ['baseline-server', 'bare pipe server during that download', tw?.baseline],
      ['index-server', 'index-server under S load (throughput run)', indexWindows?.index],
      ['baseline-dgram', 'bare dgram server under the same load', indexWindows?.baseline],
    ];
    for (const [dir, title, window] of parts) {
      for (const summary of await summarizeProfiles(join(profileDir, dir), 12, window)) profiles.push({ title, summary });
    }
  }

  const report: BenchReport = {
    startedAt,
    seconds: (Date.now() - startedAt.getTime()) / 1000,
    options: {
      size: formatSize(options.size),
      runs: options.runs,
      duration: options.duration,
      names: options.names,
      rate: options.rate,
      window: options.window,
      sockets: options.sockets,
      counts: options.counts.join('/'),
      profile: options.profile,
      'udp-scale': options.udpScale,
      'swarm-size': formatSize(options.swarmSize),
      'rss-count': options.rssCount,
    },
    loadBefore,
    loadAfter: os.loadavg(),
    transfer,
    index,
    indexHttp,
    scale,
    udpScale,
    swarm,
    cluster,
    clusterSkipped,
    generator: needsSender ? generatorNote : undefined,
    profiles,
  };
  log(`\n${consoleTable(report)}`);
  for (const p of profiles) log(`\n${formatProfile(p.summary, p.title).join('\n')}`);
  if (options.write) {
    await writeReport(options.out, report);
    log(`\nwrote ${options.out}`);
  }
}

main()
  .catch((err: Error) => {
    if (stopping) return;
    process.stderr.write(`bench: ${err.message}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
