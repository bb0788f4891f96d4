/**
 * The bench's S load generator in C (udp-blast.c), built at bench time with the machine's cc:
 * the Node generator (load-generator.ts) saturates its own core before a fast server does.
 * Without cc, or when the build fails, the benchmarks fall back to the Node generator and say so.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { encodeSearch } from '../../src/protocol/index-messages.js';
import { BENCH_DIR, benchName, track } from './measure.js';

/** The C source, in the source tree (dist/ holds only the compiled TypeScript). */
const SOURCE = resolve(BENCH_DIR, '..', '..', '..', 'scripts', 'bench', 'udp-blast.c');

export interface FastSender {
  bin: string;
  /** A file of `names` pre-encoded S requests (written once per count). */
  pduFile(names: number): Promise<string>;
}

/** Builds udp-blast into `work`; undefined (with the reason in `why`) when it cannot. */
export function buildFastSender(work: string): { sender?: FastSender; why: string } {
  const bin = join(work, 'udp-blast');
  const cc = process.env.CC ?? 'cc';
  const r = spawnSync(cc, ['-O2', '-o', bin, SOURCE], { encoding: 'utf8' });
  if (r.error) return { why: `no C compiler (${cc}: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}): the Node load generator is used` };
  if (r.status !== 0) return { why: `${cc} could not build udp-blast.c (${r.stderr.trim().split('\n')[0]}): the Node load generator is used` };
  const files = new Map<number, Promise<string>>();
  const pduFile = (names: number) => {
    let file = files.get(names);
    if (!file) {
      const path = join(work, `search-${names}.pdus`);
      const all = Buffer.alloc(names * 100);
      for (let i = 0; i < names; i++) encodeSearch(benchName(i)).copy(all, i * 100);
      file = writeFile(path, all).then(() => path);
      files.set(names, file);
    }
    return file;
  };
  return { sender: { bin, pduFile }, why: `C sender (udp-blast.c built with ${cc} -O2)` };
}

/** Starts udp-blast against 127.0.0.1:`port` (a request unanswered after 100 ms is lost: loopback answers in well under 10); prints like load-generator.js --mode throughput. */
export async function spawnFastSender(s: FastSender, port: number, o: { names: number; window: number; warmup: number; duration: number; lossMs?: number }): Promise<ChildProcess> {
  const file = await s.pduFile(o.names);
  const args = ['127.0.0.1', String(port), file, String(o.window), String(o.warmup), String(o.duration), String(o.lossMs ?? 100)];
  return track(spawn(s.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
}
