/**
 * Swarm: the real `peer download NAME --no-register --connections N` fetching one random file
 * from N real `peer serve` holders at once, each a child process serving its own folder (a
 * hard link of the same file), each swarm with its own index-server so that a one-holder case
 * has exactly one registration. Two comparisons, alternated within one run:
 *
 * 1. Speed: 4 holders each capped with `--max-upload-rate 10M` against 1 such holder, timed
 *    from spawning the client to its exit; the speed-up is the ratio of the median times, and
 *    the client's JSON report says how many bytes each holder sent.
 * 2. Memory: the client's peak RSS (VmHWM, from the peak-reporter preload) with 8 unlimited
 *    holders against 1, for the whole file and for an eighth of it: it should not grow with
 *    the file or with the number of holders.
 *
 * The one capped holder takes size / 10 MiB/s per run (20 s at 200 MiB), so its runs are
 * capped to fit a budget and the output says so.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { finish, formatSize, median, MiB, nowMs, peerdexBins, readExitReport, spawnNode, startNodeService, type BenchService } from './measure.js';

export interface SwarmBenchOptions {
  size: number;
  runs: number;
  /** Temporary folder for the files (deleted by the caller). */
  work: string;
  log: (line: string) => void;
}

export interface SwarmRun {
  seconds: number;
  clientPeakRss: number;
  clientCpu: number;
  /** Bytes each holder sent, in the order the holders were started (from the JSON report). */
  bytesByHolder: number[];
}

export interface SwarmCase {
  holders: number;
  size: number;
  runs: SwarmRun[];
  medianSeconds: number;
  /** Highest client peak RSS over the runs. */
  clientPeakRss: number;
}

export interface SwarmBenchResult {
  size: number;
  smallSize: number;
  /** The per-holder upload cap of the speed comparison, bytes per second. */
  uploadRate: number;
  speed: { many: SwarmCase; single: SwarmCase; speedUp: number; shares: number[]; singleRunsCapped: boolean };
  memory: { manyBig: SwarmCase; singleBig: SwarmCase; manySmall: SwarmCase; singleSmall: SwarmCase };
}

const BIG = 'swarm.bin';
const SMALL = 'swarm-small.bin';
/** `--max-upload-rate` of each holder in the speed comparison (k/M/G are 1024-based). */
const UPLOAD_RATE = '10M';
const UPLOAD_RATE_BYTES = 10 * MiB;
const SPEED_HOLDERS = 4;
const MEMORY_HOLDERS = 8;
/** Seconds the one-holder speed runs may take together before their count is cut. */
const SINGLE_BUDGET_SECONDS = 40;

interface Swarm {
  label: string;
  indexPort: number;
  /** Content port of each holder, in start order. */
  ports: number[];
}

/** Writes `size` random bytes. */
async function writeRandom(path: string, size: number): Promise<void> {
  function* blocks() {
    for (let left = size; left > 0; left -= MiB) yield randomBytes(Math.min(MiB, left));
  }
  await pipeline(Readable.from(blocks()), createWriteStream(path));
}

export async function benchSwarm(o: SwarmBenchOptions): Promise<SwarmBenchResult> {
  const root = join(o.work, 'swarm');
  const source = join(root, 'source');
  await mkdir(source, { recursive: true });
  const smallSize = Math.max(1, Math.floor(o.size / 8));
  o.log(`  writing a random ${formatSize(o.size)} file and one of ${formatSize(smallSize)}`);
  await writeRandom(join(source, BIG), o.size);
  await writeRandom(join(source, SMALL), smallSize);

  const bins = peerdexBins();
  const services: BenchService[] = [];
  const stopServices = async () => {
    // Holders deregister on SIGTERM, so each swarm's index goes after its holders.
    for (const s of services.splice(0).reverse()) await s.stop();
  };

  /** An index-server and `count` holders of their own folders, started in parallel. */
  const startSwarm = async (label: string, count: number, rate: string | undefined): Promise<Swarm> => {
    const index = await startNodeService(bins.index, ['--port', '0', '--host', '127.0.0.1', '--quiet'], /listening on udp [^ ]*:(\d+)/);
    services.push(index);
    const started = await Promise.allSettled(
      Array.from({ length: count }, async (_, i) => {
        const dir = join(root, `${label}-${i}`);
        await mkdir(dir, { recursive: true });
        for (const name of [BIG, SMALL]) await link(join(source, name), join(dir, name));
        const args = ['serve', '--dir', dir, '--port', '0', '--host', '127.0.0.1', '--index', `127.0.0.1:${index.port}`, '--quiet', '--rescan', '3600'];
        return startNodeService(bins.peer, rate ? [...args, '--max-upload-rate', rate] : args, /registered for tcp port (\d+)/, { timeoutMs: 300_000 });
      }),
    );
    const holders = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    services.push(...holders);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason as Error;
    return { label, indexPort: index.port, ports: holders.map((h) => h.port) };
  };

  /** One download of `name` from `swarm`; the downloaded file is deleted afterwards. */
  const download = async (swarm: Swarm, name: string, size: number): Promise<SwarmRun> => {
    const dest = join(root, 'dest');
    await rm(dest, { recursive: true, force: true });
    await mkdir(dest, { recursive: true });
    const peakFile = join(root, 'peak.json');
    await rm(peakFile, { force: true });
    const args = ['download', name, '--dir', dest, '--no-register', '--index', `127.0.0.1:${swarm.indexPort}`, '--json', '--connections', String(swarm.ports.length)];
    const t0 = nowMs();
    const result = await finish(spawnNode(bins.peer, args, { peakFile }), 300_000);
    const seconds = (nowMs() - t0) / 1000;
    if (result.code !== 0) throw new Error(`swarm download (${swarm.label}) failed (exit ${result.code ?? result.signal}): ${result.stderr.trim() || result.stdout.trim()}`);
    const got = (await stat(join(dest, name))).size;
    if (got !== size) throw new Error(`swarm download (${swarm.label}) wrote ${got} bytes, expected ${size}`);
    await rm(dest, { recursive: true, force: true });
    const report = (JSON.parse(result.stdout) as { report: { holder: string; bytes: number }[] }).report;
    const bytesByHolder = swarm.ports.map((port) => report.find((r) => r.holder.endsWith(`:${port}`))?.bytes ?? 0);
    const client = readExitReport(peakFile);
    return { seconds, clientPeakRss: client.hwm, clientCpu: client.cpu, bytesByHolder };
  };

  const measured = (holders: number, size: number): SwarmCase => ({ holders, size, runs: [], medianSeconds: NaN, clientPeakRss: NaN });
  const measure = async (c: SwarmCase, swarm: Swarm, name: string, tag: string) => {
    const r = await download(swarm, name, c.size);
    c.runs.push(r);
    c.medianSeconds = median(c.runs.map((x) => x.seconds));
    c.clientPeakRss = Math.max(...c.runs.map((x) => x.clientPeakRss));
    o.log(
      `  ${tag} ${c.holders} holder(s) ${formatSize(c.size).padStart(8)}  ${r.seconds.toFixed(2).padStart(6)} s  client peak ${mib(r.clientPeakRss)}  cpu ${r.clientCpu.toFixed(2)} s  bytes per holder ${shareText(r.bytesByHolder)}`,
    );
  };

  try {
    // 1. Speed: 4 capped holders against 1.
    const singleExpected = o.size / UPLOAD_RATE_BYTES;
    const singleRuns = Math.min(o.runs, Math.max(1, Math.floor(SINGLE_BUDGET_SECONDS / singleExpected)));
    const singleRunsCapped = singleRuns < o.runs;
    o.log(
      `  speed: ${SPEED_HOLDERS} holders vs 1, each --max-upload-rate ${UPLOAD_RATE}; ${o.runs} run(s) of ${SPEED_HOLDERS} holders, ` +
        `${singleRuns} of 1 holder${singleRunsCapped ? ` (capped: ~${singleExpected.toFixed(0)} s each)` : ''}`,
    );
    const [capped, cappedOne] = await Promise.all([startSwarm('capped', SPEED_HOLDERS, UPLOAD_RATE), startSwarm('capped-one', 1, UPLOAD_RATE)]);
    const many = measured(SPEED_HOLDERS, o.size);
    const single = measured(1, o.size);
    for (let run = 0; run < o.runs; run++) {
      const pair: [SwarmCase, Swarm][] = [
        [many, capped],
        [single, cappedOne],
      ];
      const order = run >= singleRuns ? pair.slice(0, 1) : run % 2 === 0 ? pair : pair.reverse();
      for (const [c, swarm] of order) await measure(c, swarm, BIG, `run ${run + 1} speed `);
    }
    await stopServices();
    const shares = Array.from({ length: SPEED_HOLDERS }, (_, i) => median(many.runs.map((r) => r.bytesByHolder[i] / sum(r.bytesByHolder))));
    const speedUp = single.medianSeconds / many.medianSeconds;
    o.log(`  ${SPEED_HOLDERS} holders / 1 holder speed-up: ${speedUp.toFixed(2)}x (target ≥ 3.5x); median share per holder ${shares.map(pct).join(' ')}`);

    // 2. Memory: 8 unlimited holders against 1, whole file and an eighth of it.
    o.log(`  memory: client peak RSS, ${MEMORY_HOLDERS} unlimited holders vs 1, ${formatSize(o.size)} and ${formatSize(smallSize)}, ${o.runs} alternated run(s)`);
    const [unlimited, unlimitedOne] = await Promise.all([startSwarm('unlimited', MEMORY_HOLDERS, undefined), startSwarm('unlimited-one', 1, undefined)]);
    await download(unlimited, BIG, o.size); // warm-up
    const cases: [SwarmCase, Swarm, string][] = [
      [measured(MEMORY_HOLDERS, o.size), unlimited, BIG],
      [measured(1, o.size), unlimitedOne, BIG],
      [measured(MEMORY_HOLDERS, smallSize), unlimited, SMALL],
      [measured(1, smallSize), unlimitedOne, SMALL],
    ];
    for (let run = 0; run < o.runs; run++) {
      const order = run % 2 === 0 ? cases : [...cases].reverse();
      for (const [c, swarm, name] of order) await measure(c, swarm, name, `run ${run + 1} memory`);
    }
    const [manyBig, singleBig, manySmall, singleSmall] = cases.map(([c]) => c) as [SwarmCase, SwarmCase, SwarmCase, SwarmCase];
    o.log(
      `  client peak RSS: ${formatSize(o.size)} ${MEMORY_HOLDERS} holders ${mib(manyBig.clientPeakRss)}, 1 holder ${mib(singleBig.clientPeakRss)}; ` +
        `${formatSize(smallSize)} ${MEMORY_HOLDERS} holders ${mib(manySmall.clientPeakRss)}, 1 holder ${mib(singleSmall.clientPeakRss)} (target < 150 MB with ${MEMORY_HOLDERS} holders)`,
    );

    return {
      size: o.size,
      smallSize,
      uploadRate: UPLOAD_RATE_BYTES,
      speed: { many, single, speedUp, shares, singleRunsCapped },
      memory: { manyBig, singleBig, manySmall, singleSmall },
    };
  } finally {
    await stopServices();
  }
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
const mib = (n: number) => `${(n / MiB).toFixed(0)} MiB`;
/** Each holder's part of the bytes received, like `26% 25% 24% 25%`. */
export const shareText = (bytes: number[]): string => bytes.map((b) => pct(b / Math.max(1, sum(bytes)))).join(' ');
