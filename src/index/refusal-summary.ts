/**
 * Counts refusals and drops per source address over an interval, so that a flood is logged
 * as a few lines with counts instead of one line per datagram. The first refusal of a source
 * in an interval is worth showing in full (`note` says so); the rest are counted, and
 * `flush` gives one line per source that had more, then starts the next interval.
 *
 * Bounded: at most `maxSources` sources are told apart per interval; refusals from further
 * sources are counted together. Pure: no timers (the caller flushes).
 */
export interface SummaryLine {
  /** The source address, or undefined for "every source past maxSources". */
  from: string | undefined;
  /** Refusals counted after the first (all of them for the catch-all line). */
  total: number;
  /** [kind, count], most frequent first; a kind is e.g. `R E 6` or `dropped`. */
  kinds: [string, number][];
}

export class RefusalSummary {
  readonly #maxSources: number;
  #sources = new Map<string, Map<string, number>>();
  #others = new Map<string, number>();

  constructor(options: { maxSources?: number } = {}) {
    this.#maxSources = options.maxSources ?? 256;
  }

  /** Counts one refusal of `kind` from `from`; true when it is that source's first this interval. */
  note(from: string, kind: string): boolean {
    const kinds = this.#sources.get(from);
    if (kinds === undefined) {
      if (this.#sources.size >= this.#maxSources) {
        bump(this.#others, kind);
        return false;
      }
      this.#sources.set(from, new Map());
      return true;
    }
    bump(kinds, kind);
    return false;
  }

  /** The interval's lines (busiest source first; the catch-all last), and a fresh interval. */
  flush(): SummaryLine[] {
    const lines: SummaryLine[] = [];
    for (const [from, kinds] of this.#sources) if (kinds.size > 0) lines.push(line(from, kinds));
    lines.sort((a, b) => b.total - a.total);
    if (this.#others.size > 0) lines.push(line(undefined, this.#others));
    this.#sources = new Map();
    this.#others = new Map();
    return lines;
  }
}

function bump(counts: Map<string, number>, kind: string): void {
  counts.set(kind, (counts.get(kind) ?? 0) + 1);
}

function line(from: string | undefined, counts: Map<string, number>): SummaryLine {
  const kinds = [...counts].sort((a, b) => b[1] - a[1]);
  return { from, total: kinds.reduce((sum, [, n]) => sum + n, 0), kinds };
}
