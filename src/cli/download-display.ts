/**
 * What `peer download` shows while it runs: on a terminal, one progress line per active
 * download (name, %, speed, holders in use, elapsed time, ETA); otherwise (a log, a pipe) one
 * plain line per active download every few seconds, and one when it ends. Notes (holders that
 * failed or lied, repairs) are gathered per download.
 */
import cliProgress from 'cli-progress';
import type { DownloadEvent } from '../peer/downloader.js';
import type { SwarmProgress } from '../peer/swarm/swarm-download.js';
import { formatBytes, showSha256 } from './common.js';
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
  readonly #hex: boolean;

  /** `plain`: print a progress line every few seconds (no terminal, not --json); `hex`: digests in hex. */
  constructor(options: { bars: boolean; verbose: boolean; plain?: boolean; hex?: boolean }) {
    this.#verbose = options.verbose;
    this.#hex = options.hex ?? false;
    if (!options.bars && options.plain) {
      this.#plainTimer = setInterval(() => this.#plainLines(), PLAIN_EVERY_MS);
      this.#plainTimer.unref();
    }
    // The whole line must fit: a wrapped line would be drawn over at the next update.
    const wide = (process.stdout.columns ?? 80) >= 120;
    this.#multi = options.bars
      ? new cliProgress.MultiBar(
          {
            format: wide
              ? '{name} |{bar}| {percentage}% {done} / {size} | {speed} | {holders} | {elapsed} | ETA {left}'
              : '{name} {bar} {percentage}% {done}/{size} {speed} {holders} ETA {left}',
            barsize: wide ? 30 : 12,
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
    while (a.samples.length > 2 && now - a.samples[0].t > SPEED_WINDOW_MS) a.samples.shift();
    a.last = p;
    if (!this.#multi) return;
    const payload = this.#payload(name, a, p);
    if (!a.bar) a.bar = this.#multi.create(p.total, p.received, payload);
    else a.bar.update(p.received, payload);
  }

  #payload(name: string, a: Active, p: SwarmProgress) {
    const first = a.samples[0];
    const now = Date.now();
    // Nothing for a while (every holder gone): no speed, no holders, rather than stale figures.
    const quiet = now - (a.samples.at(-1)?.t ?? now) > SPEED_WINDOW_MS;
    const rate = quiet ? 0 : now > first.t ? ((p.received - first.bytes) * 1000) / (now - first.t) : 0;
    const holders = quiet ? 0 : p.holders.length;
    return {
      name: escapeForTerminal(name),
      done: formatBytes(p.received),
      size: formatBytes(p.total),
      speed: `${formatBytes(Math.round(rate))}/s`,
      holders: `${holders} holder${holders === 1 ? '' : 's'}`,
      elapsed: elapsed(now - a.started),
      // From the speed of the last few seconds (cli-progress's own `eta` averages a few
      // updates, and its name is taken: a payload field called `eta` is overwritten).
      left: rate > 0 ? elapsed(((p.total - p.received) * 1000) / rate) : '?',
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

  /**
   * A download's event. What every user should know (a repair, a resume, several contents
   * under one name) becomes a note; what each holder did is shown only with --verbose, as it
   * happens (a failed download's error already sums it up).
   */
  event(name: string, e: DownloadEvent): void {
    const a = this.#active.get(name);
    if (!a) return;
    const note = noteFor(e, name, a, this.#hex);
    if (note) a.notes.push(note);
    const detail = note ?? (this.#verbose ? detailFor(e, name, a) : undefined);
    if (this.#verbose && detail) this.line(`${escapeForTerminal(name)}: ${escapeForTerminal(detail)}`, process.stderr);
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
      this.#multi.log(`${hardWrap(text, (process.stdout.columns ?? 80) - 1)}\n`);
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

/** The start of a digest, enough to tell contents apart. */
const short = (sha256: string, hex: boolean) => `${showSha256(sha256, hex).slice(0, hex ? 12 : 10)}…`;

/** The notes every user sees (at the end, or in --json). */
function noteFor(e: DownloadEvent, name: string, a: Active, hex: boolean): string | undefined {
  if (e.type === 'repaired') return `${e.pieces} piece(s) from ${e.liar} did not match and were fetched again`;
  if (e.type === 'holder' && e.resumeFrom > 0 && !a.notes.some((n) => n.startsWith('resuming'))) return `resuming with ${formatBytes(e.resumeFrom)} kept from an earlier run`;
  if (e.type === 'contents') {
    const others = e.others.map((o) => `${o.holders} ${o.holders === 1 ? 'has' : 'have'} ${short(o.sha256, hex)}`).join(', ');
    const why = e.resumed ? 'the one the kept partial data belongs to' : 'the one most holders have';
    return `the index lists ${e.others.length + 1} different contents under "${name}": ${e.chosen.holders} holder(s) have ${short(e.chosen.sha256, hex)}, ${others}; fetching ${why}`;
  }
  return undefined;
}

/** What --verbose adds, as it happens. */
function detailFor(e: DownloadEvent, name: string, a: Active): string | undefined {
  if (e.type === 'holder-failed' && !a.failedHolders.has(e.holder)) {
    a.failedHolders.add(e.holder);
    return `holder ${e.holder} failed (it is tried again after a rest): ${e.reason}`;
  }
  if (e.type === 'holder-banned') return `holder ${e.holder} dropped: ${e.reason}${e.dropped > 0 ? ` (${e.dropped} piece(s) it sent discarded)` : ''}`;
  if (e.type === 'holder') return `holder ${e.holder} is sending`;
  if (e.type === 'waiting') return `no holder can send "${name}" now; looking again (${e.seconds} s left)`;
  return undefined;
}

/**
 * Breaks lines longer than `width` at spaces (a soft-wrapped line would be drawn over by the
 * bars). A word longer than the width (a long path) stays whole, so it can still be copied.
 */
function hardWrap(text: string, width: number): string {
  return text
    .split('\n')
    .map((line) => {
      if (width < 20 || [...line].length <= width) return line;
      const rows: string[] = [];
      let row = '';
      for (const word of line.split(' ')) {
        if (row !== '' && [...row].length + 1 + [...word].length > width) {
          rows.push(row);
          row = word;
        } else row = row === '' ? word : `${row} ${word}`;
      }
      rows.push(row);
      return rows.join('\n');
    })
    .join('\n');
}
