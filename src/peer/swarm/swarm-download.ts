/**
 * One swarm download: finds holders through the index, fetches runs of pieces from up to
 * `connections` holders at once into a sparse part file, keeps a piece map beside it, verifies
 * the whole-file SHA-256, finds and drops a holder that sent wrong bytes, and moves the file
 * into place. Holders that fail rest and are tried again; holders that break the rules are
 * banned and lose every piece they sent. When every holder is gone it keeps looking (new
 * searches, growing waits) for `waitMs` before giving up with one line naming what it tried.
 *
 * The pure parts live beside it: the piece map, the picker, the holder book and the blame
 * procedure. This file only drives them with sockets, timers and files.
 */
import { finished } from 'node:stream/promises';
import { ContentConnection } from '../content-client.js';
import { PeerdexError, isPeerdexError } from '../../protocol/errors.js';
import type { Holder } from '../../protocol/index-messages.js';
import type { IndexClient } from '../index-client.js';
import { findLiar } from './blame.js';
import { HolderBook, type HolderReport } from './holder-book.js';
import { HolderSource, holderKey } from './holder-source.js';
import { PieceMap } from './piece-map.js';
import { EARLIER_RUN, Picker, type Assignment } from './picker.js';
import { discardKept, loadKept, PieceStore } from './piece-store.js';
import { PrefixHasher } from './prefix-hasher.js';
import { probe, tooLarge, type Reference } from './probe.js';
import { RangeSink } from './range-sink.js';
import { fetchPieceInMemory } from './piece-fetch.js';

export interface SwarmOptions {
  index: IndexClient;
  filename: string;
  dir: string;
  /** Holders fetched from at once. Default 8. */
  connections?: number;
  /** A holder that sends less than 64 KiB in this long loses its request. Default 10 s. */
  stallTimeoutMs?: number;
  /** How long to keep looking once every known holder has failed. Default 30 s. */
  waitMs?: number;
  /** Largest content accepted, in bytes, and how to describe the limit in an error. */
  maxSize: number;
  describeMaxSize: string;
  /** This peer's own content port: never download from it. */
  selfPort?: number | undefined;
  /** Shared download rate limit. */
  limiter?: { take(n: number): Promise<void> } | undefined;
  /** Look for more holders this often while downloading. Default 5 s. */
  researchMs?: number;
  signal?: AbortSignal | undefined;
  onProgress?: (p: SwarmProgress) => void;
  onEvent?: (e: SwarmEvent) => void;
}

export interface SwarmProgress {
  received: number;
  total: number;
  /** Holders being fetched from now. */
  holders: string[];
  /** Kept for callers of the one-holder downloader: the first holder in use. */
  holder: string;
}

export type SwarmEvent =
  | { type: 'holder'; holder: string; resumeFrom: number }
  | { type: 'holder-failed'; holder: string; reason: string }
  | { type: 'holder-banned'; holder: string; reason: string; dropped: number }
  | { type: 'waiting'; seconds: number }
  | { type: 'repaired'; liar: string; pieces: number }
  | { type: 'contents'; chosen: { sha256: string; holders: number }; others: { sha256: string; holders: number }[]; resumed: boolean };

export interface SwarmResult {
  size: number;
  sha256: string;
  /** Holders that sent bytes, in the order they first did. */
  holders: string[];
  /** Bytes kept from an earlier run and used. */
  resumedFrom: number;
  report: HolderReport[];
}

interface InFlight {
  a: Assignment;
  conn?: ContentConnection | undefined;
  sink?: RangeSink | undefined;
  cancelled: boolean;
  stalled?: string | undefined;
  received: number;
}

/** Below this many bytes per stall window a holder counts as stalled (a trickle is a stall). */
const STALL_MIN_BYTES = 64 * 1024;

export class SwarmDownload {
  readonly #o: Required<Omit<SwarmOptions, 'selfPort' | 'limiter' | 'signal' | 'onProgress' | 'onEvent'>> & SwarmOptions;
  readonly #book = new HolderBook();
  readonly #holders = new Map<string, Holder>();
  readonly #source: HolderSource;
  readonly #sessions = new Map<string, Promise<void>>();
  readonly #inflight = new Map<number, InFlight>();
  /** Pieces an endgame copy is being written into (no one else writes them meanwhile). */
  readonly #claimed = new Map<number, number>();
  readonly #delivered: string[] = [];
  #ref!: Reference;
  #store!: PieceStore;
  #picker!: Picker;
  #hasher!: PrefixHasher;
  #resumedFrom = 0;
  #fatal: Error | undefined;
  #wake: (() => void) | undefined;
  #discovering: Promise<void> | undefined;
  #lastIndexError: string | undefined;
  #reported = 0;
  /** When the last byte arrived or a new holder was found (what `waitMs` is counted from). */
  #lastProgress = Date.now();
  /** The content being fetched (its sha256), once chosen. */
  #target: string | undefined;
  /** The partial data was deleted (it can never verify): nothing is kept to resume. */
  #discarded = false;

  constructor(options: SwarmOptions) {
    this.#o = { connections: 8, stallTimeoutMs: 10_000, waitMs: 30_000, researchMs: 5_000, ...options };
    this.#source = new HolderSource({ index: options.index, filename: options.filename, selfPort: options.selfPort });
  }

  /** Downloads into the part file, verifies, and moves the result to `finalPath`. */
  async run(finalPath: string): Promise<SwarmResult> {
    const onAbort = () => this.#stop(new PeerdexError('ERR_CANCELLED', `download of "${this.#o.filename}" stopped`));
    this.#o.signal?.addEventListener('abort', onAbort);
    try {
      if (this.#o.signal?.aborted) onAbort();
      await this.#discover(true);
      if (this.#holders.size === 0) throw new PeerdexError('ERR_NOT_FOUND', `no peer has "${this.#o.filename}"`);
      await this.#open();
      await this.#transfer();
      await this.#verify();
      await this.#store.commit(finalPath);
      return { size: this.#ref.size, sha256: this.#ref.sha256, holders: this.#delivered, resumedFrom: this.#resumedFrom, report: this.#book.report() };
    } catch (err) {
      throw await this.#fail(err);
    } finally {
      this.#o.signal?.removeEventListener('abort', onAbort);
    }
  }

  // ---- setting up ----------------------------------------------------------------------

  /** Decides what the content is (kept partial data, or a probe of holders) and opens the store. */
  async #open(): Promise<void> {
    const { dir, filename } = this.#o;
    let kept = await loadKept(dir, filename);
    const indexDigest = this.#chooseContent(kept?.meta.sha256);
    if (kept && indexDigest !== undefined && kept.meta.sha256 !== indexDigest) kept = undefined; // other content
    // No piece kept: the size in the meta is only some holder's word (maybe a liar's), ask again.
    if (kept?.map.doneCount === 0) kept = undefined;
    if (!kept) await discardKept(dir, filename);
    this.#ref = kept?.meta ?? (await this.#probeUntilKnown(indexDigest));
    const map = kept?.map ?? new PieceMap(this.#ref.size);
    this.#resumedFrom = map.doneBytes;
    this.#store = await PieceStore.open(dir, filename, this.#ref, map);
    this.#picker = new Picker(map);
    this.#hasher = new PrefixHasher(map, this.#store);
    this.#hasher.advance();
  }

  async #probeUntilKnown(expectedSha256: string | undefined): Promise<Reference> {
    return this.#untilHolders(async (ready) => {
      const targets = ready.slice(0, 3).map((key) => ({ key, ...this.#holders.get(key)! }));
      const outcome = await probe(targets, {
        filename: this.#o.filename,
        expectedSha256,
        maxSize: this.#o.maxSize,
        describeMaxSize: this.#o.describeMaxSize,
        timeoutMs: this.#o.stallTimeoutMs,
      });
      for (const l of outcome.liars) this.#ban(l.key, l.reason);
      for (const f of outcome.failed) this.#failed(f.key, f.error.message);
      for (const t of outcome.tooLarge) this.#ban(t.key, `announces ${t.size} bytes, more than ${this.#o.describeMaxSize}`);
      // Nobody left but holders of something too big: refuse now, before a byte is written.
      const big = outcome.tooLarge.at(-1);
      if (!outcome.reference && big && this.#book.notBanned().length === 0) throw tooLarge(this.#o.filename, big.size, this.#o.describeMaxSize);
      return outcome.reference;
    });
  }

  /**
   * Which content to fetch when the index lists several under one name (holders registered
   * with different digests): the one kept partial data belongs to, if a holder still has it
   * (a resume stays on target), else the one most holders have. Holders of the others are
   * left out, and the choice is reported.
   */
  #chooseContent(keptSha256: string | undefined): string | undefined {
    const counts = new Map<string, number>();
    for (const h of this.#holders.values()) if (h.sha256) counts.set(h.sha256, (counts.get(h.sha256) ?? 0) + 1);
    let target = keptSha256 !== undefined && counts.has(keptSha256) ? keptSha256 : undefined;
    for (const [sha256, n] of counts) if (target === undefined || (n > counts.get(target)! && target !== keptSha256)) target = sha256;
    this.#target = target;
    if (counts.size > 1 && target !== undefined) {
      const others = [...counts].filter(([sha256]) => sha256 !== target).map(([sha256, holders]) => ({ sha256, holders }));
      this.#o.onEvent?.({ type: 'contents', chosen: { sha256: target, holders: counts.get(target)! }, others, resumed: target === keptSha256 });
      for (const [key, h] of this.#holders) if (h.sha256 && h.sha256 !== target) this.#ban(key, `registered other content under this name (sha256 ${h.sha256})`);
    }
    return target;
  }

  // ---- the transfer --------------------------------------------------------------------

  async #transfer(): Promise<void> {
    await this.#untilHolders(() => {
      this.#startSessions();
      return Promise.resolve(this.#picker.map.complete && this.#sessions.size === 0 ? true : undefined);
    });
    await Promise.all(this.#sessions.values());
  }

  /**
   * Runs `step` with the holders ready now until it returns a value. While no holder is
   * usable it searches again and waits, growing the waits, for at most waitMs in a row.
   */
  async #untilHolders<T>(step: (ready: string[]) => Promise<T | undefined>): Promise<T> {
    let starving = false;
    let rest = 250;
    let nextRound = Date.now() + this.#o.researchMs;
    for (;;) {
      this.#throwIfStopped();
      const value = await step(this.#book.ready(Date.now()));
      this.#throwIfStopped();
      if (value !== undefined) return value;
      const now = Date.now();
      const busy = this.#sessions.size > 0 || this.#book.ready(now).length > 0;
      // Given up when nothing has come for waitMs: no byte and no new holder. A dead holder
      // tried again and again after its rests keeps sessions starting, but that is no progress.
      // Checked between sessions, so a holder being asked now gets its answer (or its failure,
      // which the final error names) first.
      const quietFor = now - this.#lastProgress;
      if (quietFor >= this.#o.waitMs && this.#sessions.size === 0) throw this.#giveUp();
      if (busy) {
        starving = false;
        rest = 250;
      } else if (!starving) {
        starving = true;
        nextRound = now; // every holder is out: search again at once
      }
      if (now >= nextRound) {
        void this.#discover(false);
        if (!busy) this.#o.onEvent?.({ type: 'waiting', seconds: Math.max(0, Math.round((this.#o.waitMs - quietFor) / 1000)) });
        nextRound = now + (busy ? this.#o.researchMs : rest);
        if (!busy) rest = Math.min(rest * 2, 4000);
      }
      const retryAt = this.#book.nextRetryAt(now) ?? Infinity;
      await this.#sleep(Math.max(10, Math.min(1000, nextRound - now, retryAt - now)));
    }
  }

  #startSessions(): void {
    if (this.#picker.map.complete) return;
    for (const key of this.#book.ready(Date.now())) {
      if (this.#sessions.size >= this.#o.connections) break;
      this.#book.setBusy(key, true);
      const session = this.#session(key).finally(() => {
        this.#book.setBusy(key, false);
        this.#sessions.delete(key);
        this.#wakeUp();
      });
      this.#sessions.set(key, session);
    }
  }

  /** One holder's connection: request after request until there is nothing left for it. */
  async #session(key: string): Promise<void> {
    const holder = this.#holders.get(key)!;
    let conn: ContentConnection | undefined;
    try {
      for (;;) {
        if (this.#fatal !== undefined) return;
        const a = this.#picker.pick(key, Math.max(1, this.#sessions.size));
        if (!a) return;
        const f: InFlight = { a, cancelled: false, received: 0 };
        this.#inflight.set(a.id, f);
        const stall = this.#watchStall(f);
        try {
          conn ??= await ContentConnection.open(holder.addr, holder.port, { idleTimeoutMs: this.#o.stallTimeoutMs });
          f.conn = conn;
          await this.#fetch(key, f);
        } catch (err) {
          conn?.close();
          conn = undefined;
          if (!f.cancelled) throw f.stalled ? new PeerdexError('ERR_TIMEOUT', f.stalled) : err;
        } finally {
          clearInterval(stall);
          await f.sink?.stop();
          this.#inflight.delete(a.id);
          this.#picker.finish(a.id);
        }
        if (f.cancelled) {
          conn?.close();
          conn = undefined;
        }
      }
    } catch (err) {
      this.#holderError(key, err);
    } finally {
      conn?.close();
    }
  }

  async #fetch(key: string, f: InFlight): Promise<void> {
    const { map } = this.#picker;
    const { a } = f;
    const offset = map.range(a.first).offset;
    const end = map.range(a.first + a.count - 1);
    const length = end.offset + end.length - offset;
    const started = Date.now();
    const conn = f.conn!;
    const header = await conn.request(this.#o.filename, offset, length);
    if (header.sha256 !== this.#ref.sha256) throw new PeerdexError('ERR_INTEGRITY', `holder ${key} offers content whose SHA-256 (${header.sha256}) is not ${this.#ref.sha256}`);
    if (header.size !== length) throw new PeerdexError('ERR_INTEGRITY', `holder ${key} answered a request for ${length} bytes with a header of ${header.size}`);
    const sink = new RangeSink({
      map,
      store: this.#store,
      first: a.first,
      count: a.count,
      inMemory: a.endgame,
      skip: (i) => map.isDone(i) || (this.#claimed.get(i) ?? a.id) !== a.id,
      onPiece: (i, data) => this.#pieceDone(f, i, data),
      limiter: this.#o.limiter,
      release: (chunk) => conn.release(chunk),
    });
    f.sink = sink;
    sink.on('error', (err) => {
      this.#stop(err); // the disk failed: no holder can help with that
    });
    await f.conn!.receive(sink, (d) => {
      f.received += d.length;
      this.#lastProgress = Date.now();
      this.#progress();
    });
    sink.end();
    await finished(sink);
    this.#book.delivered(key, f.received, Date.now() - started, 0);
    if (f.received > 0 && !this.#delivered.includes(key)) {
      this.#delivered.push(key);
      this.#o.onEvent?.({ type: 'holder', holder: key, resumeFrom: this.#resumedFrom });
    }
  }

  async #pieceDone(f: InFlight, i: number, data: Buffer | undefined): Promise<void> {
    if (this.#picker.map.isDone(i)) return;
    if (data === undefined) {
      if ((this.#claimed.get(i) ?? f.a.id) === f.a.id) this.#completed(f, i);
      return;
    }
    if (this.#claimed.has(i)) return;
    // An endgame copy: whoever is writing this piece on disk right now stops first.
    this.#claimed.set(i, f.a.id);
    try {
      for (const other of this.#inflight.values()) {
        if (other !== f && other.sink && !other.a.endgame && other.sink.currentPiece === i) await this.#cancel(other);
      }
      if (this.#picker.map.isDone(i)) return;
      await this.#store.write(data, this.#picker.map.range(i).offset);
      this.#completed(f, i);
    } finally {
      this.#claimed.delete(i);
    }
  }

  #completed(f: InFlight, i: number): void {
    this.#book.credit(f.a.holder, this.#picker.map.range(i).length);
    for (const id of this.#picker.complete(f.a.id, i)) {
      const other = this.#inflight.get(id);
      if (other && (other.a.endgame || !this.#picker.hasWorkLeft(id))) void this.#cancel(other);
    }
    this.#store.saveSoon();
    this.#hasher.advance();
    this.#progress();
  }

  /** Stops a request that has nothing useful left (another holder was faster). */
  async #cancel(f: InFlight): Promise<void> {
    f.cancelled = true;
    f.conn?.close();
    await f.sink?.stop();
  }

  #watchStall(f: InFlight): NodeJS.Timeout {
    let last = 0;
    const timer = setInterval(() => {
      const got = f.received - last;
      last = f.received;
      if (got < STALL_MIN_BYTES && f.sink?.position !== this.#endOf(f.a)) {
        f.stalled = `holder ${f.a.holder} stalled: ${got} bytes in ${this.#o.stallTimeoutMs / 1000} s`;
        f.conn?.close();
      }
    }, this.#o.stallTimeoutMs);
    timer.unref();
    return timer;
  }

  #endOf(a: Assignment): number {
    const r = this.#picker.map.range(a.first + a.count - 1);
    return r.offset + r.length;
  }

  // ---- holders -------------------------------------------------------------------------

  /** One round of searches; new holders join the book. The first round's failure is fatal. */
  #discover(first: boolean): Promise<void> {
    this.#discovering ??= (async () => {
      try {
        for (const h of await this.#source.round()) {
          const key = holderKey(h);
          this.#holders.set(key, h);
          const fresh = this.#book.add(key);
          if (fresh) this.#lastProgress = Date.now();
          // Found later, registered with other content than the one being fetched: left out.
          if (fresh && this.#target !== undefined && h.sha256 && h.sha256 !== this.#target) this.#ban(key, `registered other content under this name (sha256 ${h.sha256})`);
        }
        this.#lastIndexError = undefined;
      } catch (err) {
        if (first) throw err;
        this.#lastIndexError = (err as Error).message;
      } finally {
        this.#discovering = undefined;
        this.#wakeUp();
      }
    })();
    return this.#discovering;
  }

  #holderError(key: string, err: unknown): void {
    if (!isPeerdexError(err) || err.code === 'ERR_FILE') return this.#stop(err);
    if (err.code === 'ERR_CANCELLED') return;
    // Other content, broken framing or a refused range inside the file: a liar, not a failure.
    if (err.code === 'ERR_INTEGRITY' || (err.code === 'ERR_REMOTE' && err.remoteCode === 4)) this.#ban(key, err.message);
    else this.#failed(key, err.message);
  }

  #failed(key: string, reason: string): void {
    this.#book.failed(key, reason, Date.now());
    this.#o.onEvent?.({ type: 'holder-failed', holder: key, reason });
  }

  /** Bans `key` and drops every piece it sent, unless they are known good (`keepPieces`). */
  #ban(key: string, reason: string, keepPieces = false): void {
    if (this.#book.isBanned(key)) return;
    this.#book.ban(key, reason);
    const dropped = keepPieces ? 0 : (this.#picker?.dropSource(key) ?? 0);
    if (dropped > 0) {
      this.#hasher.reset();
      this.#store.saveSoon();
    }
    this.#o.onEvent?.({ type: 'holder-banned', holder: key, reason, dropped });
  }

  // ---- verifying -----------------------------------------------------------------------

  async #verify(): Promise<void> {
    for (let round = 0; ; round++) {
      const digest = await this.#hasher.digest();
      if (digest === this.#ref.sha256) return;
      const mismatch = `does not match its SHA-256 (got ${digest}, expected ${this.#ref.sha256})`;
      if (round > 0) throw new PeerdexError('ERR_INTEGRITY', `"${this.#o.filename}" still ${mismatch} after repair`);
      const conns = new Map<string, ContentConnection>();
      const outcome = await findLiar({
        map: this.#picker.map,
        store: this.#store,
        expected: this.#ref.sha256,
        sourceOf: (i) => this.#picker.sourceOf(i),
        checkers: () => this.#book.notBanned(),
        fetchPiece: (holder, i) => fetchPieceInMemory(conns, this.#holders.get(holder)!, this.#o.filename, this.#picker.map.range(i), this.#ref.sha256, this.#o.stallTimeoutMs),
      }).finally(() => {
        for (const c of conns.values()) c.close();
      });
      if (outcome.kind === 'repaired') {
        for (const i of outcome.pieces) this.#picker.setSource(i, 'repaired');
        // The file with those pieces replaced matched the SHA-256: the liar's other pieces are right.
        if (outcome.liar !== EARLIER_RUN) this.#ban(outcome.liar, `sent pieces that do not match the SHA-256 (${outcome.pieces.length} found by asking other holders)`, true);
        this.#o.onEvent?.({ type: 'repaired', liar: outcome.liar, pieces: outcome.pieces.length });
        this.#hasher.reset();
        continue;
      }
      const from = [...new Set(this.#delivered)].join(', ') || EARLIER_RUN;
      if (outcome.kind === 'agreed') {
        await this.#store.close();
        await discardKept(this.#o.dir, this.#o.filename);
        this.#discarded = true;
        throw new PeerdexError('ERR_INTEGRITY', `content from ${from} ${mismatch}; every holder asked sent the same bytes, so the partial data was deleted`);
      }
      for (const d of outcome.disputes) this.#picker.forget(d.piece);
      const why =
        outcome.disputes.length > 0
          ? `holders disagree on ${outcome.disputes.length} piece(s) and none could be shown wrong`
          : `no other holder could check ${outcome.unchecked} piece(s)`;
      throw new PeerdexError('ERR_INTEGRITY', `content from ${from} ${mismatch}; ${why}`, {
        details: { disputes: outcome.disputes },
      });
    }
  }

  // ---- progress, waiting, stopping -----------------------------------------------------

  #progress(): void {
    const map = this.#picker.map;
    let received = map.doneBytes;
    for (const f of this.#inflight.values()) {
      if (!f.sink || f.a.endgame || this.#picker.map.isDone(f.sink.currentPiece)) continue;
      received += f.sink.position - map.range(f.sink.currentPiece).offset;
    }
    // Pieces dropped from a liar make the figure go back; a progress bar should not.
    this.#reported = Math.max(this.#reported, Math.min(received, map.size));
    const holders = [...this.#sessions.keys()];
    this.#o.onProgress?.({ received: this.#reported, total: map.size, holders, holder: holders[0] ?? this.#delivered.at(-1) ?? '' });
  }

  #giveUp(): PeerdexError {
    const report = this.#book.report();
    const tried = report.length;
    const last = report.filter((r) => r.reason).at(-1)?.reason ?? this.#lastIndexError ?? 'no holder answered';
    const text = `could not download "${this.#o.filename}": ${tried} holder${tried === 1 ? '' : 's'} tried, none could send it (last: ${last})`;
    const code = /refused|closed|reach/.test(last) ? 'ERR_CONNECTION' : /SHA-256|broke|header|range/.test(last) ? 'ERR_INTEGRITY' : 'ERR_NOT_FOUND';
    return new PeerdexError(code, text, { details: { holders: report } });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#wakeUp(), ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  #wakeUp(): void {
    this.#wake?.();
  }

  #throwIfStopped(): void {
    if (this.#fatal !== undefined) throw this.#fatal;
  }

  /** Ends the download with `err`: every request is cancelled, the main loop wakes and throws. */
  #stop(err: unknown): void {
    this.#fatal ??= err instanceof Error ? err : new Error(String(err));
    for (const f of this.#inflight.values()) void this.#cancel(f);
    this.#wakeUp();
  }

  /** Cleans up after a failure: keeps partial data to resume (but not after a disk error). */
  async #fail(err: unknown): Promise<unknown> {
    this.#stop(err);
    await Promise.all(this.#sessions.values());
    if (!this.#store) return err;
    const diskError = isPeerdexError(err) && err.code === 'ERR_FILE';
    await this.#store.close();
    if (diskError) {
      await discardKept(this.#o.dir, this.#o.filename);
      return err;
    }
    const kept = this.#picker.map.doneBytes;
    // Nothing to resume: leave no part file, nor a meta naming a size no piece has confirmed.
    if (kept === 0 && !this.#discarded) await discardKept(this.#o.dir, this.#o.filename);
    if (kept === 0 || this.#discarded || !isPeerdexError(err)) return err;
    return new PeerdexError(err.code, `${err.message} (${kept} bytes kept: run the same download again to resume)`, {
      cause: err,
      details: { ...err.details, keptBytes: kept },
      remoteCode: err.remoteCode,
    });
  }
}
