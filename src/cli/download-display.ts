/**
 * What `peer download` shows while it runs: on a terminal, one progress line per active
 * download (name, %, speed, holders in use, elapsed time, ETA); otherwise (a log, a pipe) one
 * plain line per active download every few seconds, and one when it ends. Notes (holders that
 * failed or lied, repairs) are gathered per download.
 */
import cliProgress from 'cli-progress';
import type { DownloadEvent } from '../peer/downloader.js';
import type { SwarmProgress } from '../peer/swarm/swarm-download.js';
import { formatBytes } from './common.js';
import { escapeForTerminal } from './output.js';

interface Active {
  bar: cliProgress.SingleBar | undefined;
  started: number;
  last: SwarmProgress | undefined;
  /** Recent (time, bytes) samples for the speed. */
  samples: { t: number; bytes: number }[];
  notes: string[];
  failedHolders: Set<string>;
}

const SPEED_WINDOW_MS = 3000;
/** How often a download without a terminal says how far it is. */
const PLAIN_EVERY_MS = 5000;

const elapsed = (ms: number): string => {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
};

export class DownloadDisplay {
  readonly #multi: cliProgress.MultiBar | undefined;
  readonly #verbose: boolean;
  readonly #active = new Map<string, Active>();
  readonly #plainTimer: NodeJS.Timeout | undefined;

  /** `plain`: print a progress line every few seconds (no terminal, not --json). */
  constructor(options: { bars: boolean; verbose: boolean; plain?: boolean }) {
    this.#verbose = options.verbose;
    if (!options.bars && options.plain) {
      this.#plainTimer = setInterval(() => this.#plainLines(), PLAIN_EVERY_MS);
      this.#plainTimer.unref();
    }
    this.#multi = options.bars
      ? new cliProgress.MultiBar(
          {
            format: '{name} |{bar}| {percentage}% {done} / {size} | {speed} | {holders} | {elapsed} | ETA {eta_formatted}',
            hideCursor: true,
            stream: process.stdout,
            clearOnComplete: false,
            autopadding: true,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  }

  started(name: string): void {
    this.#active.set(name, { bar: undefined, started: Date.now(), last: undefined, samples: [], notes: [], failedHolders: new Set() });
  }

  progress(name: string, p: SwarmProgress): void {
    const a = this.#active.get(name);
    if (!a) return;
    const now = Date.now();
    a.samples.push({ t: now, bytes: p.received });
    while (a.samples.length > 2 && now - a.samples[0]!.t > SPEED_WINDOW_MS) a.samples.shift();
    a.last = p;
    if (!this.#multi) return;
    const payload = this.#payload(name, a, p);
    if (!a.bar) a.bar = this.#multi.create(p.total, p.received, payload);
    else a.bar.update(p.received, payload);
  }

  #payload(name: string, a: Active, p: SwarmProgress) {
    const first = a.samples[0]!;
    const now = Date.now();
    const rate = now > first.t ? ((p.received - first.bytes) * 1000) / (now - first.t) : 0;
    return {
      name: escapeForTerminal(name),
      done: formatBytes(p.received),
      size: formatBytes(p.total),
      speed: `${formatBytes(Math.round(rate))}/s`,
      holders: `${p.holders.length} holder${p.holders.length === 1 ? '' : 's'}`,
      elapsed: elapsed(now - a.started),
    };
  }

  /** Without a terminal: one line per download under way. */
  #plainLines(): void {
    for (const [name, a] of this.#active) {
      if (!a.last) continue;
      const p = this.#payload(name, a, a.last);
      const pct = a.last.total > 0 ? Math.floor((a.last.received * 100) / a.last.total) : 100;
      this.line(`${p.name}: ${pct}% ${p.done} / ${p.size}, ${p.speed}, ${p.holders}, ${p.elapsed} elapsed`);
    }
  }

  event(name: string, e: DownloadEvent): void {
    const a = this.#active.get(name);
    if (!a) return;
    let note: string | undefined;
    if (e.type === 'holder-failed' && !a.failedHolders.has(e.holder)) {
      a.failedHolders.add(e.holder);
      note = `holder ${e.holder} failed: ${e.reason}`;
    } else if (e.type === 'holder-banned') note = `holder ${e.holder} dropped: ${e.reason}${e.dropped > 0 ? ` (${e.dropped} piece(s) it sent discarded)` : ''}`;
    else if (e.type === 'repaired') note = `${e.pieces} piece(s) from ${e.liar} did not match and were fetched again`;
    else if (e.type === 'holder' && e.resumeFrom > 0 && !a.notes.some((n) => n.startsWith('resuming'))) note = `resuming with ${formatBytes(e.resumeFrom)} kept from an earlier run`;
    else if (e.type === 'waiting' && this.#verbose) note = `no holder can send "${name}" now; looking again (${e.seconds} s left)`;
    if (note === undefined) return;
    a.notes.push(note);
    if (this.#verbose) this.line(`${escapeForTerminal(name)}: ${escapeForTerminal(note)}`, process.stderr);
  }

  /** A download ended: its bar goes; returns its notes. */
  finished(name: string): string[] {
    const a = this.#active.get(name);
    this.#active.delete(name);
    if (a?.bar) this.#multi?.remove(a.bar);
    return a?.notes ?? [];
  }

  /** Prints a line above the bars (or plainly without bars). */
  line(text: string, stream: NodeJS.WriteStream = process.stdout): void {
    if (this.#multi && stream === process.stdout) {
      this.#multi.log(`${text}\n`);
      this.#multi.update(); // now, not at the next redraw (which a stop() would cancel)
    } else stream.write(`${text}\n`);
  }

  /** Removes the bars and shows the cursor again. */
  stop(): void {
    clearInterval(this.#plainTimer);
    this.#multi?.update();
    this.#multi?.stop();
  }
}
