/**
 * What a peer's downloads are doing, for status pages and APIs: the ones queued or running,
 * and the last few that ended, each with its progress and speed. Pure bookkeeping: the Peer
 * feeds it and reads snapshots on demand.
 */
import type { SwarmProgress } from './swarm/swarm-download.js';

export type DownloadState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface DownloadInfo {
  id: number;
  name: string;
  state: DownloadState;
  /** Bytes of the file present (kept from an earlier run included). */
  received: number;
  /** The file's size, once a holder has announced it (0 before). */
  total: number;
  /** Holders being fetched from now. */
  holders: string[];
  /** Bytes per second over the last second or so (0 when nothing arrives). */
  speed: number;
  startedAt: number;
  endedAt?: number;
  error?: string;
}

/** A speed older than this without news is reported as 0: nothing is arriving. */
const STALE_MS = 3000;
/** Speed is measured over windows of at least this long. */
const WINDOW_MS = 1000;

interface Entry {
  info: DownloadInfo;
  windowAt: number;
  windowReceived: number;
  lastAt: number;
}

export class DownloadRegistry {
  readonly #active = new Map<number, Entry>();
  readonly #recent: DownloadInfo[] = [];
  readonly #keep: number;
  readonly #now: () => number;

  constructor(options: { keepRecent?: number; now?: () => number } = {}) {
    this.#keep = options.keepRecent ?? 20;
    this.#now = options.now ?? Date.now;
  }

  add(id: number, name: string): void {
    const now = this.#now();
    const info: DownloadInfo = { id, name, state: 'queued', received: 0, total: 0, holders: [], speed: 0, startedAt: now };
    this.#active.set(id, { info, windowAt: now, windowReceived: 0, lastAt: now });
  }

  running(id: number): void {
    const e = this.#active.get(id);
    if (e) e.info.state = 'running';
  }

  progress(id: number, p: SwarmProgress): void {
    const e = this.#active.get(id);
    if (!e) return;
    const now = this.#now();
    if (e.info.total === 0 && e.info.received === 0) e.windowReceived = p.received; // kept bytes are not speed
    Object.assign(e.info, { received: p.received, total: p.total, holders: p.holders });
    e.lastAt = now;
    if (now - e.windowAt >= WINDOW_MS) {
      e.info.speed = Math.round(((p.received - e.windowReceived) * 1000) / (now - e.windowAt));
      e.windowAt = now;
      e.windowReceived = p.received;
    }
  }

  finish(id: number, state: Exclude<DownloadState, 'queued' | 'running'>, details: { size?: number; error?: string } = {}): void {
    const e = this.#active.get(id);
    if (!e) return;
    this.#active.delete(id);
    const info: DownloadInfo = { ...e.info, state, holders: [], speed: 0, endedAt: this.#now() };
    if (details.size !== undefined) info.received = info.total = details.size;
    if (details.error !== undefined) info.error = details.error;
    this.#recent.unshift(info);
    this.#recent.length = Math.min(this.#recent.length, this.#keep);
  }

  has(id: number): boolean {
    return this.#active.has(id);
  }

  /** Whether a download of `name` is queued or running. */
  busyWith(name: string): boolean {
    for (const e of this.#active.values()) if (e.info.name === name) return true;
    return false;
  }

  get activeCount(): number {
    return this.#active.size;
  }

  /** Copies of the downloads queued or running, oldest first. */
  active(): DownloadInfo[] {
    const now = this.#now();
    return [...this.#active.values()].map((e) => ({ ...e.info, holders: [...e.info.holders], speed: now - e.lastAt > STALE_MS ? 0 : e.info.speed }));
  }

  /** Copies of the downloads that ended, newest first. */
  recent(): DownloadInfo[] {
    return this.#recent.map((info) => ({ ...info }));
  }
}
