/**
 * Transfer: a random file downloaded with the real `peer download NAME --no-register` from a
 * real `peer serve` of a temporary folder (child processes, registered through a real index),
 * against a bare Node pipe (baseline-pipe.ts: fs.createReadStream -> socket ->
 * fs.createWriteStream) in the same run, alternated. Each download is timed from spawning the
 * client to its exit; peak RSS of both sides comes from /proc (VmHWM; the server's peak is
 * reset before each run). The fixed cost of one command (start-up, index lookup, connection)
 * is measured with a 1-byte file and reported apart, so the rate net of it can be shown.
 */
import { randomFillSync } from 'node:crypto';
import { open, mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { monotonicUs, type TimeWindow } from './profile.js';
import {
  benchScript,
  finish,
  median,
  MiB,
  nowMs,
  peerdexBins,
  procCpuSeconds,
  procMemory,
  readExitReport,
  resetPeak,
  spawnNode,
  startNodeService,
  type BenchService,
} from './measure.js';

export interface TransferBenchOptions {
  size: number;
  runs: number;
  /** Temporary folder for the files (deleted by the caller). */
  work: string;
  /** When set, every process of one extra run of each side writes a CPU profile under it. */
  profileDir?: string | undefined;
  log: (line: string) => void;
}

export interface TransferRun {
  seconds: number;
  mbPerSecond: number;
  clientPeakRss: number;
  serverPeakRss: number;
  clientCpu: number;
  serverCpu: number;
}

export interface TransferSide {
  runs: TransferRun[];
  medianMbPerSecond: number;
  medianSeconds: number;
  /** Median time of the same command for a 1-byte file: start-up, lookup, connection. */
  fixedSeconds: number;
  /** Rate with the fixed cost taken out: size / (seconds - fixedSeconds). */
  netMbPerSecond: number;
  clientPeakRss: number;
  serverPeakRss: number;
  /** CPU seconds per GiB moved, client and server (medians). */
  clientCpuPerGiB: number;
  serverCpuPerGiB: number;
}

export interface TransferBenchResult {
  size: number;
  peerdex: TransferSide;
  baseline: TransferSide;
  ratio: number;
  netRatio: number;
  /** Peak RSS of a download of size/16, to show memory does not grow with the file. */
  smallSize: number;
  smallClientPeakRss: number;
  smallServerPeakRss: number;
  /** When profiled: when each side's profiled download ran (to cut the servers' profiles). */
  profileWindows?: Record<'peerdex' | 'baseline', TimeWindow> | undefined;
}

const BIG = 'bench.bin';
const SMALL = 'bench-small.bin';
const TINY = 'bench-tiny.bin';

/** Writes `size` random bytes (random 1 MiB blocks, so it cannot be compressed or deduplicated). */
async function randomFile(path: string, size: number): Promise<void> {
  const file = await open(path, 'w');
  try {
    const block = Buffer.allocUnsafe(Math.min(size, 4 * MiB) || 1);
    for (let done = 0; done < size;) {
      const n = Math.min(block.length, size - done);
      randomFillSync(block, 0, n);
      await file.write(block, 0, n);
      done += n;
    }
  } finally {
    await file.close();
  }
}

interface Servers {
  index: BenchService;
  peer: BenchService;
  pipe: Record<string, BenchService>;
}

type Side = 'peerdex' | 'baseline';

/** One download of `name` by one side; the downloaded file is deleted afterwards. */
async function downloadOnce(side: Side, name: string, size: number, servers: Servers, work: string, profileDir?: string): Promise<TransferRun> {
  const dest = join(work, `dest-${side}`);
  await rm(dest, { recursive: true, force: true });
  await mkdir(dest, { recursive: true });
  const server = side === 'peerdex' ? servers.peer : servers.pipe[name];
  const serverPid = server.child.pid!;
  resetPeak(serverPid);
  const peakFile = join(work, `peak-${side}.json`);
  await rm(peakFile, { force: true });
  const flags = profileDir ? ['--cpu-prof', '--cpu-prof-dir', join(profileDir, `${side}-client`)] : [];
  const out = join(dest, name);
  const cpu0 = procCpuSeconds(serverPid);
  const t0 = nowMs();
  const child =
    side === 'peerdex'
      ? spawnNode(peerdexBins().peer, ['download', name, '--dir', dest, '--no-register', '--index', `127.0.0.1:${servers.index.port}`, '--json'], { peakFile, flags })
      : spawnNode(benchScript('baseline-pipe.js'), ['fetch', String(server.port), out], { peakFile, flags });
  const result = await finish(child, 600_000);
  const seconds = (nowMs() - t0) / 1000;
  const serverCpu = procCpuSeconds(serverPid) - cpu0;
  if (result.code !== 0) throw new Error(`${side} download failed (exit ${result.code ?? result.signal}): ${result.stderr.trim()}`);
  const got = (await stat(out)).size;
  if (got !== size) throw new Error(`${side} download wrote ${got} bytes, expected ${size}`);
  await rm(dest, { recursive: true, force: true });
  const client = readExitReport(peakFile);
  return {
    seconds,
    mbPerSecond: size / 1e6 / seconds,
    clientPeakRss: client.hwm,
    clientCpu: client.cpu,
    serverPeakRss: procMemory(serverPid)?.hwm ?? NaN,
    serverCpu,
  };
}

function summarize(runs: TransferRun[], fixed: TransferRun[], size: number): TransferSide {
  const seconds = median(runs.map((r) => r.seconds));
  const fixedSeconds = median(fixed.map((r) => r.seconds));
  const gib = size / (1024 * MiB);
  return {
    runs,
    medianMbPerSecond: median(runs.map((r) => r.mbPerSecond)),
    medianSeconds: seconds,
    fixedSeconds,
    netMbPerSecond: size / 1e6 / Math.max(1e-9, seconds - fixedSeconds),
    clientPeakRss: Math.max(...runs.map((r) => r.clientPeakRss)),
    serverPeakRss: Math.max(...runs.map((r) => r.serverPeakRss)),
    clientCpuPerGiB: median(runs.map((r) => r.clientCpu)) / gib,
    serverCpuPerGiB: median(runs.map((r) => r.serverCpu)) / gib,
  };
}

export async function benchTransfer(o: TransferBenchOptions): Promise<TransferBenchResult> {
  const shared = join(o.work, 'shared');
  await mkdir(shared, { recursive: true });
  const smallSize = Math.max(1, Math.floor(o.size / 16));
  o.log(`  writing a random ${(o.size / MiB).toFixed(0)} MiB file`);
  await randomFile(join(shared, BIG), o.size);
  await randomFile(join(shared, SMALL), smallSize);
  await randomFile(join(shared, TINY), 1);

  const bins = peerdexBins();
  const services: BenchService[] = [];
  const start = async (...args: Parameters<typeof startNodeService>) => {
    const s = await startNodeService(...args);
    services.push(s);
    return s;
  };
  try {
    const index = await start(bins.index, ['--port', '0', '--host', '127.0.0.1', '--quiet'], /listening on udp [^ ]*:(\d+)/);
    o.log('  peer serve is hashing the shared folder');
    const peerFlags = o.profileDir ? ['--cpu-prof', '--cpu-prof-dir', join(o.profileDir, 'peerdex-server')] : [];
    const peer = await start(
      bins.peer,
      ['serve', '--dir', shared, '--port', '0', '--host', '127.0.0.1', '--index', `127.0.0.1:${index.port}`, '--quiet', '--rescan', '3600'],
      /registered for tcp port (\d+)/,
      { timeoutMs: 300_000, flags: peerFlags },
    );
    const pipeFlags = o.profileDir ? ['--cpu-prof', '--cpu-prof-dir', join(o.profileDir, 'baseline-server')] : [];
    const pipe: Record<string, BenchService> = {};
    for (const name of [BIG, SMALL, TINY]) {
      pipe[name] = await start(benchScript('baseline-pipe.js'), ['serve', join(shared, name)], /listening on tcp port (\d+)/, { flags: name === BIG ? pipeFlags : [] });
    }
    const servers: Servers = { index, peer, pipe };

    // Warm-up: both read the file once, so every measured run finds it in the page cache.
    for (const side of ['peerdex', 'baseline'] as const) await downloadOnce(side, BIG, o.size, servers, o.work);

    const runs: Record<Side, TransferRun[]> = { peerdex: [], baseline: [] };
    for (let run = 0; run < o.runs; run++) {
      const order: Side[] = run % 2 === 0 ? ['peerdex', 'baseline'] : ['baseline', 'peerdex'];
      for (const side of order) {
        const r = await downloadOnce(side, BIG, o.size, servers, o.work);
        runs[side].push(r);
        o.log(
          `  run ${run + 1} ${side.padEnd(8)} ${r.mbPerSecond.toFixed(0).padStart(5)} MB/s  ${r.seconds.toFixed(2)} s  client peak ${mib(r.clientPeakRss)}  server peak ${mib(r.serverPeakRss)}  cpu client ${r.clientCpu.toFixed(2)} s server ${r.serverCpu.toFixed(2)} s`,
        );
      }
    }
    const fixed: Record<Side, TransferRun[]> = { peerdex: [], baseline: [] };
    for (let i = 0; i < 3; i++) for (const side of ['peerdex', 'baseline'] as const) fixed[side].push(await downloadOnce(side, TINY, 1, servers, o.work));
    const small = await downloadOnce('peerdex', SMALL, smallSize, servers, o.work);
    o.log(
      `  fixed cost per command: peerdex ${median(fixed.peerdex.map((r) => r.seconds)).toFixed(3)} s, baseline ${median(fixed.baseline.map((r) => r.seconds)).toFixed(3)} s; ${mib(smallSize)} download peaks: client ${mib(small.clientPeakRss)}, server ${mib(small.serverPeakRss)}`,
    );

    let profileWindows: TransferBenchResult['profileWindows'];
    if (o.profileDir) {
      o.log('  profiling one more download of each side');
      const windows: Partial<Record<Side, TimeWindow>> = {};
      for (const side of ['peerdex', 'baseline'] as const) {
        const fromUs = monotonicUs();
        await downloadOnce(side, BIG, o.size, servers, o.work, o.profileDir);
        windows[side] = { fromUs, toUs: monotonicUs() };
      }
      profileWindows = windows as Record<Side, TimeWindow>;
    }

    const peerdex = summarize(runs.peerdex, fixed.peerdex, o.size);
    const baseline = summarize(runs.baseline, fixed.baseline, o.size);
    return {
      size: o.size,
      peerdex,
      baseline,
      ratio: peerdex.medianMbPerSecond / baseline.medianMbPerSecond,
      netRatio: peerdex.netMbPerSecond / baseline.netMbPerSecond,
      smallSize,
      smallClientPeakRss: small.clientPeakRss,
      smallServerPeakRss: small.serverPeakRss,
      profileWindows,
    };
  } finally {
    // peer serve deregisters on SIGTERM, so the index goes last.
    for (const s of services.reverse()) await s.stop();
  }
}

const mib = (n: number) => `${(n / MiB).toFixed(0)} MiB`;
