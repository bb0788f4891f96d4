/**
 * A peer: one object owning the content server (what this peer serves), the seeder (its
 * registrations) and its downloads. A download finished here is served at once by the same
 * content server and registered straight away, so the next downloader can get it from this
 * peer. Everything the parts report comes out of one event stream; `close()` cancels the
 * downloads (keeping their partial data), deregisters and closes, and may be called twice.
 */
import { EventEmitter } from 'node:events';
import PQueue from 'p-queue';
import { isPeerdexError, PeerdexError } from '../protocol/errors.js';
import { ContentServer, type ContentServerEvent, type Upload } from './content-server.js';
import { DownloadRegistry, type DownloadInfo } from './download-registry.js';
import { download, type DownloadEvent, type DownloadOptions, type DownloadResult } from './downloader.js';
import { FileLibrary } from './file-library.js';
import type { IndexClient } from './index-client.js';
import type { RateLimiter } from './rate-limiter.js';
import { Seeder, type SeederEvent } from './seeder.js';
import type { SwarmProgress } from './swarm/swarm-download.js';

export interface PeerOptions {
  dir: string;
  index: IndexClient;
  /** Content server TCP port; 0 picks a free one. Default 9100. */
  port?: number;
  host?: string;
  idleTimeoutMs?: number;
  maxConnections?: number;
  maxConnectionsPerSource?: number;
  /** Share names starting with a dot too (FileLibrary). */
  includeHidden?: boolean;
  uploadLimiter?: RateLimiter | undefined;
  refreshMs?: number;
  rescanMs?: number;
  /** A file is shared once unchanged for this long (ms). Default 2000. */
  settleMs?: number;
  /**
   * Share only what this peer downloads (`peer download --seed`), not the whole folder.
   * Default false: every file in the folder is shared (`peer serve`).
   */
  downloadsOnly?: boolean;
  /** Downloads run at once; more wait their turn (state `queued`). Default: no limit. */
  maxActiveDownloads?: number;
}

/** A file this peer shares and has registered. */
export interface SharedFileInfo {
  name: string;
  size: number;
  sha256: string;
}

/** Options a download inside the peer may set; folder, own port and registration are the peer's. */
export type PeerDownloadOptions = Omit<DownloadOptions, 'index' | 'dir' | 'registerPort' | 'selfPort' | 'signal' | 'filename' | 'onProgress' | 'onEvent'>;

export type PeerEvent =
  | { type: 'server'; event: ContentServerEvent }
  | { type: 'seeder'; event: SeederEvent }
  | { type: 'download-started'; id: number; name: string }
  | { type: 'download-progress'; id: number; name: string; progress: SwarmProgress }
  | { type: 'download-event'; id: number; name: string; event: DownloadEvent }
  | { type: 'download-done'; id: number; name: string; result: DownloadResult }
  | { type: 'download-failed'; id: number; name: string; error: Error };

export class Peer extends EventEmitter<{ event: [PeerEvent] }> {
  readonly index: IndexClient;
  readonly dir: string;
  readonly server: ContentServer;
  readonly seeder: Seeder;
  readonly #shared: Set<string> | undefined;
  readonly #downloads = new Map<number, { controller: AbortController; done: Promise<unknown> }>();
  readonly #registry = new DownloadRegistry();
  readonly #queue: PQueue;
  readonly #registered = new Map<string, SharedFileInfo>();
  #bytesReceived = 0;
  #nextId = 1;
  #closing: Promise<void> | undefined;

  private constructor(options: PeerOptions, server: ContentServer, library: FileLibrary, shared: Set<string> | undefined) {
    super();
    this.index = options.index;
    this.dir = options.dir;
    this.server = server;
    this.#shared = shared;
    this.#queue = new PQueue({ concurrency: options.maxActiveDownloads ?? Infinity });
    this.seeder = new Seeder({ library, index: options.index, contentPort: this.port, refreshMs: options.refreshMs, rescanMs: options.rescanMs, settleMs: options.settleMs });
    server.on('event', (event) => this.emit('event', { type: 'server', event }));
    this.seeder.on('event', (event) => {
      if (event.type === 'registered') this.#registered.set(event.name, { name: event.name, size: event.size, sha256: event.sha256 });
      if (event.type === 'deregistered') this.#registered.delete(event.name);
      this.emit('event', { type: 'seeder', event });
    });
  }

  /** Listens (rejecting when the port is taken) and returns; call `start()` to register. */
  static async listen(options: PeerOptions): Promise<Peer> {
    const shared = options.downloadsOnly ? new Set<string>() : undefined;
    const library = new FileLibrary(options.dir, { only: shared, includeHidden: options.includeHidden });
    const server = await ContentServer.listen({
      library,
      port: options.port,
      host: options.host,
      idleTimeoutMs: options.idleTimeoutMs,
      maxConnections: options.maxConnections,
      maxConnectionsPerSource: options.maxConnectionsPerSource,
      uploadLimiter: options.uploadLimiter,
    });
    return new Peer(options, server, library, shared);
  }

  get port(): number {
    return this.server.address().port;
  }

  /** Registers what the folder holds (resolving when done) and keeps it registered. */
  start(): Promise<void> {
    return this.seeder.start();
  }

  /** Downloads queued or running. */
  get activeDownloads(): number {
    return this.#downloads.size;
  }

  /** File bytes received from holders by this peer's downloads (all of them, repeats included). */
  get bytesReceived(): number {
    return this.#bytesReceived;
  }

  /** File bytes this peer's content server has sent. */
  get bytesSent(): number {
    return this.server.bytesSent;
  }

  /** The files shared and registered, by name. */
  get sharedFiles(): SharedFileInfo[] {
    return [...this.#registered.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Transfers this peer's content server is making now. */
  get uploads(): Upload[] {
    return this.server.uploads;
  }

  /** Downloads queued or running (oldest first) and the last ones that ended (newest first). */
  downloads(): { active: DownloadInfo[]; recent: DownloadInfo[] } {
    return { active: this.#registry.active(), recent: this.#registry.recent() };
  }

  /** Whether a download of `name` is queued or running here. */
  isDownloading(name: string): boolean {
    return this.#registry.busyWith(name);
  }

  /**
   * Downloads `name` into the peer's folder from every holder but this peer itself; once it
   * is verified it is served and registered at once.
   */
  async download(name: string, options: PeerDownloadOptions = {}): Promise<DownloadResult> {
    return this.startDownload(name, options).result;
  }

  /**
   * Starts (or queues) a download and returns its id at once, for cancel() and downloads().
   * A second download of a name already queued or running is refused (two would share a part file).
   */
  startDownload(name: string, options: PeerDownloadOptions = {}): { id: number; result: Promise<DownloadResult> } {
    if (this.#closing) throw new PeerdexError('ERR_CANCELLED', 'the peer is closing');
    if (this.#registry.busyWith(name)) throw new PeerdexError('ERR_USAGE', `"${name}" is already being downloaded`);
    const id = this.#nextId++;
    const controller = new AbortController();
    this.#registry.add(id, name);
    const result = this.#queue.add(() => this.#run(id, name, options, controller.signal));
    this.#downloads.set(id, { controller, done: result.catch(() => {}) });
    this.emit('event', { type: 'download-started', id, name });
    result
      .then(
        (r) => {
          this.#registry.finish(id, 'done', { size: r.size });
          this.emit('event', { type: 'download-done', id, name, result: r });
        },
        (err: Error) => {
          const cancelled = isPeerdexError(err) && err.code === 'ERR_CANCELLED';
          this.#registry.finish(id, cancelled ? 'cancelled' : 'failed', { error: err.message });
          this.emit('event', { type: 'download-failed', id, name, error: err });
        },
      )
      .finally(() => this.#downloads.delete(id));
    return { id, result };
  }

  async #run(id: number, name: string, options: PeerDownloadOptions, signal: AbortSignal): Promise<DownloadResult> {
    if (signal.aborted) throw new PeerdexError('ERR_CANCELLED', `download of "${name}" stopped before it started`);
    this.#registry.running(id);
    const outer = options.limiter;
    const result = await download({
      ...options,
      index: this.index,
      dir: this.dir,
      filename: name,
      selfPort: this.port,
      signal,
      // Every payload byte taken from a holder passes here: the received-bytes counter.
      limiter: {
        take: (n: number) => {
          this.#bytesReceived += n;
          return outer ? outer.take(n) : Promise.resolve();
        },
      },
      onProgress: (progress) => {
        this.#registry.progress(id, progress);
        this.emit('event', { type: 'download-progress', id, name, progress });
      },
      onEvent: (event) => this.emit('event', { type: 'download-event', id, name, event }),
    });
    this.#shared?.add(name);
    await this.seeder.share(name);
    return { ...result, registered: this.seeder.names.includes(name) };
  }

  /** Cancels one download (its partial data is kept). Returns false for an unknown id. */
  cancel(id: number): boolean {
    const d = this.#downloads.get(id);
    d?.controller.abort();
    return d !== undefined;
  }

  /** Cancels the downloads, deregisters everything and closes the server. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const running = [...this.#downloads.values()];
      for (const d of running) d.controller.abort();
      await Promise.all(running.map((d) => d.done));
      await this.seeder.close();
      await this.server.close();
    })();
    return this.#closing;
  }
}
