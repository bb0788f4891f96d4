/**
 * Reads the .cpuprofile files that `node --cpu-prof` writes and says where the time went:
 * self time by function (top N), and by kind of code (peerdex's own code, Node's built-in
 * JavaScript, dependencies, native work such as GC, and idle time).
 *
 *   node profile.js DIR [--top 15]     prints the summary of every profile in DIR
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from './measure.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionTime {
  name: string;
  where: string;
  kind: string;
  selfMs: number;
  /** Time with this function on the stack (its callees included), counted once per sample. */
  totalMs: number;
}

export interface ProfileSummary {
  file: string;
  /** Sampled time, idle excluded. */
  busyMs: number;
  idleMs: number;
  byKind: Record<string, number>;
  top: FunctionTime[];
}

/** Which part of the program a frame belongs to. */
function kindOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'gc';
  if (functionName === '(program)' || functionName === '(root)') return 'native/program';
  if (url.includes('/dist/src/')) return 'peerdex';
  if (url.includes('/dist/scripts/')) return 'bench script';
  if (url.includes('/node_modules/')) return 'dependencies';
  if (url.startsWith('node:') || url === '') return 'node internals';
  return 'other';
}

function shortUrl(url: string): string {
  const i = url.indexOf('/dist/');
  if (i >= 0) return url.slice(i + 6);
  const n = url.lastIndexOf('/node_modules/');
  if (n >= 0) return url.slice(n + 14);
  return url;
}

/** A stretch of time on the monotonic clock, in microseconds (process.hrtime.bigint() / 1000). */
export interface TimeWindow {
  fromUs: number;
  toUs: number;
}

/** The monotonic clock in microseconds, the clock V8 stamps profile samples with. */
export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

export function summarizeProfile(profile: CpuProfile, file: string, topN = 15, window?: TimeWindow): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const key = (f: CallFrame) => `${f.functionName || '(anonymous)'}\u0000${f.url}\u0000${f.lineNumber}`;
  const funcs = new Map<string, FunctionTime>();
  const byKind: Record<string, number> = {};
  const fn = (f: CallFrame): FunctionTime => {
    const k = key(f);
    let entry = funcs.get(k);
    if (!entry) {
      const where = f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : '';
      entry = { name: f.functionName || '(anonymous)', where, kind: kindOf(f), selfMs: 0, totalMs: 0 };
      funcs.set(k, entry);
    }
    return entry;
  };
  let idleMs = 0;
  let busyMs = 0;
  // Sample i lasts until sample i+1: timeDeltas[i + 1] (the last one has no known length).
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const node = byId.get(profile.samples[i]);
    if (!node) continue;
    const self = fn(node.callFrame);
    self.selfMs += ms;
    byKind[self.kind] = (byKind[self.kind] ?? 0) + ms;
    if (self.kind === 'idle') {
      idleMs += ms;
      continue;
    }
    busyMs += ms;
    const seen = new Set<FunctionTime>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const entry = fn(byId.get(id)!.callFrame);
      if (!seen.has(entry)) {
        entry.totalMs += ms;
        seen.add(entry);
      }
    }
  }
  const top = [...funcs.values()]
    .filter((f) => f.kind !== 'idle' && f.name !== '(root)')
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, topN);
  delete byKind.idle;
  return { file, busyMs, idleMs, byKind, top };
}

/** Summaries of every .cpuprofile in `dir` (none if it does not exist). */
export async function summarizeProfiles(dir: string, topN = 15, window?: TimeWindow): Promise<ProfileSummary[]> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.cpuprofile')).sort();
  const out: ProfileSummary[] = [];
  for (const f of files) {
    const profile = JSON.parse(await readFile(join(dir, f), 'utf8')) as CpuProfile;
    out.push(summarizeProfile(profile, join(dir, f), topN, window));
  }
  return out;
}

/** A profile summary as text lines (used on the console and, indented, in the report). */
export function formatProfile(s: ProfileSummary, title: string): string[] {
  const pct = (ms: number) => `${((100 * ms) / s.busyMs).toFixed(1).padStart(5)}%`;
  const lines = [`${title}: ${(s.busyMs / 1000).toFixed(2)} s busy, ${(s.idleMs / 1000).toFixed(2)} s idle`];
  const kinds = Object.entries(s.byKind).sort((a, b) => b[1] - a[1]);
  lines.push(`  by kind: ${kinds.map(([k, ms]) => `${k} ${pct(ms).trim()}`).join(', ')}`);
  lines.push('  self    total   function (where)');
  for (const f of s.top) lines.push(`  ${pct(f.selfMs)} ${pct(f.totalMs)}  ${f.name}${f.where ? ` (${f.where})` : ''}`);
  return lines;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = parseArgs(process.argv.slice(3));
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: profile.js DIR [--top N]\n');
    process.exit(1);
  }
  for (const s of await summarizeProfiles(dir, Number(args.top ?? 15))) process.stdout.write(`${formatProfile(s, s.file).join('\n')}\n\n`);
}
