/**
 * Keeps a shared folder registered with the index: registers every shareable file (with its
 * SHA-256), picks up files added, changed or removed while running, refreshes every
 * registration well inside the index's TTL (which also re-registers everything after an
 * index restart), and deregisters everything on close.
 *
 * Only settled files are registered: a file whose size or modification time changed within
 * the last `settleMs` is still being written (a copy in progress), and a registered file that
 * starts changing is deregistered until it settles again, so nobody downloads half a file.
 */
import { EventEmitter } from 'node:events';
import PQueue from 'p-queue';
import { isPeerdexError } from '../protocol/errors.js';
import type { Holder } from '../protocol/index-messages.js';
import type { FileLibrary } from './file-library.js';
import type { IndexClient } from './index-client.js';

export interface SeederOptions {
  library: FileLibrary;
  index: IndexClient;
  /** The content server's TCP port, registered with every name. */
  contentPort: number;
  /** Re-register everything this often (ms). Default 30 s: a third of the index's 90 s TTL. */
  refreshMs?: number;
  /** Look for added, changed or removed files this often (ms). Default 5 s. */
  rescanMs?: number;
  /** Index requests in flight at once. Default 16. */
  concurrency?: number;
  /** Longest close() spends deregistering (ms). Default 2500: a stop ends within 3 s. */
  closeBoundMs?: number;
  /** A file is registered once unchanged for this long (ms). Default 2000. */
  settleMs?: number;
  /** The clock (ms), for tests. */
  now?: () => number;
}

export type SeederEvent =
  | { type: 'registered'; name: string; size: number; sha256: string }
  | { type: 'deregistered'; name: string }
  | { type: 'skipped'; name: string; reason: string }
  | { type: 'index-error'; message: string }
  | { type: 'index-ok' }
  /** A file is being written (or was just changed): registered once it settles. */
  | { type: 'settling'; name: string }
  /** Files in subfolders, which are not shared (said once, and again if the count changes). */
  | { type: 'subfolders'; count: number };

interface Registered {
  sha256: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

export class Seeder extends EventEmitter<{ event: [SeederEvent] }> {
  readonly #o: Required<SeederOptions>;
  readonly #queue: PQueue;
  readonly #registered = new Map<string, Registered>();
  readonly #warned = new Set<string>();
  /** Files seen changing: their identity when last seen and since when it has not changed. */
  readonly #settling = new Map<string, { size: number; mtimeMs: number; ino: number; since: number; timer?: NodeJS.Timeout }>();
  #subfolderFiles = 0;
  #timers: NodeJS.Timeout[] = [];
  #cycle: Promise<void> = Promise.resolve();
  #indexDown = false;
  #closing: Promise<void> | undefined;

  constructor(options: SeederOptions) {
    super();
    this.#o = { refreshMs: 30_000, rescanMs: 5_000, concurrency: 16, closeBoundMs: 2500, settleMs: 2000, now: Date.now, ...options };
    this.#queue = new PQueue({ concurrency: this.#o.concurrency });
  }

  /** Names currently registered. */
  get names(): string[] {
    return [...this.#registered.keys()];
  }

  /** Registers the folder once (resolving when done), then keeps it fresh on timers. */
  async start(): Promise<void> {
    await this.sync();
    // Files still settling (just copied in) are waited for, so that start() ends with the
    // folder registered as it is; they settle within settleMs unless they keep changing.
    if (this.#settling.size > 0) {
      await new Promise((r) => setTimeout(r, this.#o.settleMs + 50));
      await this.#queue.onIdle();
    }
    this.#timers = [setInterval(() => void this.#serially(() => this.sync()), this.#o.rescanMs), setInterval(() => void this.#serially(() => this.refresh()), this.#o.refreshMs)];
  }

  /** Registers new or changed files and deregisters vanished ones. */
  async sync(): Promise<void> {
    const { files, skipped, inSubfolders } = await this.#o.library.scan();
    for (const { name, reason } of skipped) this.#warnOnce(name, reason);
    if (inSubfolders !== this.#subfolderFiles) {
      this.#subfolderFiles = inSubfolders;
      if (inSubfolders > 0) this.emit('event', { type: 'subfolders', count: inSubfolders });
    }
    const present = new Set(files);
    const jobs: Promise<unknown>[] = [];
    for (const name of this.#registered.keys()) {
      if (!present.has(name)) jobs.push(this.#queue.add(() => this.#deregister(name)));
    }
    for (const name of files) jobs.push(this.#queue.add(() => this.#registerIfChanged(name)));
    await Promise.all(jobs);
  }

  /** Registers one file now (a verified download, complete by construction: no settling). */
  share(name: string): Promise<void> {
    return this.#queue.add(() => this.#registerIfChanged(name, true));
  }

  /** Sends R again for every registered name, so none outlives the index's TTL. */
  async refresh(): Promise<void> {
    await Promise.all([...this.#registered].map(([name, r]) => this.#queue.add(() => this.#send(name, r.sha256))));
  }

  /**
   * Stops the timers, drops registrations not yet sent, and deregisters every name: all at
   * once (up to 256 in flight), each with two short tries, and for at most `closeBoundMs` in
   * all, so a stop is prompt whatever the index does. What the index did not confirm expires
   * with its TTL (said in one event). Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const t of this.#timers) clearInterval(t);
      for (const w of this.#settling.values()) clearTimeout(w.timer);
      this.#queue.clear();
      const quick = this.#stopping();
      const queue = new PQueue({ concurrency: 256 });
      const names = this.names;
      let confirmed = 0;
      const all = Promise.all(names.map((name) => queue.add(async () => (await this.#deregister(name, quick)) && confirmed++)));
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#o.closeBoundMs)));
      await Promise.race([all, bound]);
      clearTimeout(timer);
      queue.clear();
      const left = names.length - confirmed;
      if (left > 0) this.emit('event', { type: 'index-error', message: `index ${this.#o.index.label} did not confirm ${left} deregistration(s); they expire with its TTL` });
    })();
    return this.#closing;
  }

  #serially(work: () => Promise<void>): Promise<void> {
    this.#cycle = this.#cycle.then(work).catch((err: unknown) => {
      this.emit('event', { type: 'index-error', message: (err as Error).message });
    });
    return this.#cycle;
  }

  async #registerIfChanged(name: string, settled = false): Promise<void> {
    let file;
    try {
      file = await this.#o.library.resolve(name);
    } catch (err) {
      // A symlink leading out of the folder, or a file that vanished since the scan (the
      // next sync deregisters it): say so once, do not share it.
      this.#warnOnce(name, (err as Error).message);
      return;
    }
    const known = this.#registered.get(name);
    if (known && known.size === file.size && known.mtimeMs === file.mtimeMs && known.ino === file.ino) return;
    if (!settled && !this.#isSettled(name, file)) {
      // Changing: whatever was registered under this name is not what the folder holds now.
      if (known) await this.#deregister(name);
      return;
    }
    const sha256 = await this.#o.library.digest(file);
    if (await this.#send(name, sha256)) {
      this.#registered.set(name, { sha256, size: file.size, mtimeMs: file.mtimeMs, ino: file.ino });
      // A registration that was on its way when close() began is taken back at once.
      if (this.#closing) return void this.#deregister(name, this.#stopping());
      this.emit('event', { type: 'registered', name, size: file.size, sha256 });
    }
  }

  /** One R; failures are reported once per outage, and the next cycle tries again. */
  async #send(name: string, sha256: string): Promise<boolean> {
    try {
      await this.#o.index.register(this.#holder(name, sha256));
      if (this.#indexDown) {
        this.#indexDown = false;
        this.emit('event', { type: 'index-ok' });
      }
      return true;
    } catch (err) {
      if (!isPeerdexError(err)) throw err;
      if (err.code === 'ERR_REMOTE') this.emit('event', { type: 'index-error', message: err.message });
      else if (!this.#indexDown) {
        this.#indexDown = true;
        this.emit('event', { type: 'index-error', message: `${err.message}; will keep trying` });
      }
      return false;
    }
  }

  /** Sends T for `name`; true when the index confirmed it (or had it no more). */
  async #deregister(name: string, index = this.#o.index): Promise<boolean> {
    const r = this.#registered.get(name);
    if (!r) return true;
    this.#registered.delete(name);
    try {
      await index.deregister(this.#holder(name, r.sha256));
      this.emit('event', { type: 'deregistered', name });
      return true;
    } catch (err) {
      // Already gone (expired, index restarted) is fine.
      if (isPeerdexError(err) && err.code === 'ERR_NOT_FOUND') return true;
      // While closing, the summary line says it once; otherwise each failure is worth a line.
      if (!this.#closing) this.emit('event', { type: 'index-error', message: (err as Error).message });
      return false;
    }
  }

  /**
   * Whether `file` has stayed as it is for settleMs: true at once for a file not modified for
   * that long (at start-up, most files); otherwise it is watched and checked again when the
   * time is up (and at every scan).
   */
  #isSettled(name: string, file: { size: number; mtimeMs: number; ino: number }): boolean {
    const now = this.#o.now();
    const seen = this.#settling.get(name);
    const same = seen && seen.size === file.size && seen.mtimeMs === file.mtimeMs && seen.ino === file.ino;
    const since = same ? seen.since : Math.min(now, Math.max(file.mtimeMs, now - this.#o.settleMs));
    if (now - since >= this.#o.settleMs) {
      clearTimeout(seen?.timer);
      this.#settling.delete(name);
      return true;
    }
    if (!same) {
      clearTimeout(seen?.timer);
      const timer = setTimeout(() => void this.#queue.add(() => this.#registerIfChanged(name)), this.#o.settleMs - (now - since) + 10);
      timer.unref();
      this.#settling.set(name, { size: file.size, mtimeMs: file.mtimeMs, ino: file.ino, since, timer });
      if (!seen) this.emit('event', { type: 'settling', name });
    }
    return false;
  }

  /** The index as a stop uses it: two short tries, so a stop never waits on a silent index. */
  #stopping(): IndexClient {
    return this.#o.index.withTiming({ tries: 2, timeoutMs: 400, maxTimeoutMs: 400, refusedTries: 1 });
  }

  #warnOnce(name: string, reason: string): void {
    if (!this.#warned.has(name)) this.emit('event', { type: 'skipped', name, reason });
    this.#warned.add(name);
  }

  #holder(name: string, sha256: string): Holder {
    return { port: this.#o.contentPort, addr: '', filename: name, sha256 };
  }
}
