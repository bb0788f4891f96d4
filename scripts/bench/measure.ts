/**
 * Small measuring helpers shared by the benchmarks: sizes, medians and percentiles, a child
 * process's memory and CPU time from /proc, and a registry of every child the benchmark
 * started so that all of them are stopped, whatever happens.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN } from '../lib/processes.js';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** The compiled bench folder (dist/scripts/bench), where the child scripts live. */
export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const benchScript = (name: string): string => join(BENCH_DIR, name);

/**
 * The peerdex bins to measure: this build's, or another build's dist/ folder named by
 * PEERDEX_BENCH_DIST (to measure a change: build the old code elsewhere, run both).
 */
export function peerdexBins(): { index: string; peer: string } {
  const dist = process.env.PEERDEX_BENCH_DIST;
  return dist ? { index: join(dist, 'src', 'cli', 'index-server.js'), peer: join(dist, 'src', 'cli', 'peer.js') } : BIN;
}

/** Parses `1GiB`, `256MiB`, `64M`, `1e6`, `4096`. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?(?:e\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(text.trim());
  if (!m) throw new Error(`cannot read size "${text}" (try 1GiB, 256MiB, 4096)`);
  const unit = { '': 1, k: 1024, m: MiB, g: GiB, t: 1024 * GiB }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * unit);
}

export const formatSize = (n: number): string => (n >= GiB && n % GiB === 0 ? `${n / GiB} GiB` : n >= MiB ? `${+(n / MiB).toFixed(1)} MiB` : `${n} B`);

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Nearest-rank percentile of already sorted values. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** VmRSS and VmHWM (peak RSS) of a process, in bytes; undefined once it is gone. */
export function procMemory(pid: number): { rss: number; hwm: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Resets a process's peak RSS (VmHWM) to its current RSS (Linux: clear_refs 5). */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used so far. */
export function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime, stime
  } catch {
    return NaN;
  }
}

/** The CPU model, as the first "model name" of /proc/cpuinfo. */
export function cpuModel(): string {
  try {
    return /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

// ---- child processes --------------------------------------------------------------------

const children = new Set<ChildProcess>();

/** Every child process started through `spawnNode`, until it exits. */
export const liveChildren = (): ReadonlySet<ChildProcess> => children;

/** Remembers a child started otherwise (a native load generator) until it exits. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/**
 * Spawns `node [flags] script args`, remembered until it exits. The preload reports the
 * child's peak RSS when it exits (see peak-reporter.ts) into `peakFile`, if given.
 */
export function spawnNode(script: string, args: string[], options: { flags?: string[]; peakFile?: string } & SpawnOptions = {}): ChildProcess {
  const { flags = [], peakFile, ...spawnOptions } = options;
  const preload = peakFile ? ['--import', new URL('./peak-reporter.js', import.meta.url).href] : [];
  const env = { ...process.env, ...spawnOptions.env, ...(peakFile ? { PEERDEX_BENCH_PEAK_FILE: peakFile } : {}) };
  const child = spawn(process.execPath, [...flags, ...preload, script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...spawnOptions,
    env,
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Collects a child's stdout and stderr and waits for it to exit (SIGKILL after `timeoutMs`). */
export async function finish(child: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  } finally {
    clearTimeout(timer);
  }
  // 'exit' can come before the pipes are drained.
  await Promise.all([child.stdout, child.stderr].map((s) => (s && !s.readableEnded ? once(s, 'close').catch(() => {}) : Promise.resolve())));
  return { code: child.exitCode, signal: child.signalCode, stdout, stderr };
}

/** Stops a child: SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Stops every child still running (used on the way out, also after an error). */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)));
}

/** What a child reported on exit (see peak-reporter.ts): peak RSS (bytes), CPU seconds; NaN if nothing. */
export function readExitReport(file: string): { hwm: number; cpu: number } {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as { hwm: number; cpu: number };
    return { hwm: Number(r.hwm), cpu: Number(r.cpu) };
  } catch {
    return { hwm: NaN, cpu: NaN };
  }
}

export interface BenchService {
  child: ChildProcess;
  port: number;
  lines: string[];
  /** SIGTERM, wait for the exit (SIGKILL after a grace period). */
  stop(): Promise<void>;
}

/**
 * Starts a long-running node script and waits up to `timeoutMs` for a line of its output
 * matching `portLine` (group 1 is the port), like scripts/lib/processes.ts but with the
 * bench's node flags and peak reporter.
 */
export async function startNodeService(
  script: string,
  args: string[],
  portLine: RegExp,
  options: { timeoutMs?: number; peakFile?: string; flags?: string[] } = {},
): Promise<BenchService> {
  const { timeoutMs = 30_000, ...spawnOptions } = options;
  const child = spawnNode(script, args, spawnOptions);
  const lines: string[] = [];
  const onLines = (stream: NodeJS.ReadableStream | null, onLine: (l: string) => void) => {
    let rest = '';
    stream?.on('data', (d: Buffer) => {
      const parts = (rest + d.toString()).split('\n');
      rest = parts.pop()!;
      for (const p of parts) onLine(p);
    });
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${script} did not start within ${timeoutMs} ms: ${lines.join(' | ')}`)), timeoutMs);
      const onLine = (line: string) => {
        lines.push(line);
        if (lines.length > 200) lines.shift();
        const m = portLine.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      };
      onLines(child.stdout, onLine);
      onLines(child.stderr, onLine);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${script} exited with ${code} before it was ready: ${lines.join(' | ')}`));
      });
    });
    return { child, port, lines, stop: () => stopChild(child) };
  } catch (err) {
    await stopChild(child);
    throw err;
  }
}

// ---- shared by the index benchmarks -----------------------------------------------------

export const BENCH_NAME_PREFIX = 'bench-';
/** Name number `i` as registered by the benchmarks: `bench-0000042.bin` (17 bytes). */
export const benchName = (i: number): string => `${BENCH_NAME_PREFIX}${String(i).padStart(7, '0')}.bin`;
/** A valid sha256 field (the digest of "peerdex"), sent with every benchmark registration. */
export const BENCH_SHA256 = 'mr5zhxBAb37wByyRcI_P6OwQ4JTWhT_iWh7xRHPSeF8';

/** `--key value` and `--flag` pairs into an object (values stay strings; flags are true). */
export function parseArgs(argv: readonly string[]): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq > 0) out[a.slice(2, eq)] = a.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out[a.slice(2)] = argv[++i]!;
    else out[a.slice(2)] = true;
  }
  return out;
}
