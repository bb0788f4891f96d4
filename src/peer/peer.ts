/**
 * A peer: one object owning the content server (what this peer serves), the seeder (its
 * registrations) and its downloads. A download finished here is served at once by the same
 * content server and registered straight away, so the next downloader can get it from this
 * peer. Everything the parts report comes out of one event stream; `close()` cancels the
 * downloads (keeping their partial data), deregisters and closes, and may be called twice.
 */
import { EventEmitter } from 'node:events';
import { ContentServer, type ContentServerEvent } from './content-server.js';
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
  /**
   * Share only what this peer downloads (`peer download --seed`), not the whole folder.
   * Default false: every file in the folder is shared (`peer serve`).
   */
  downloadsOnly?: boolean;
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
  #nextId = 1;
  #closing: Promise<void> | undefined;

  private constructor(options: PeerOptions, server: ContentServer, library: FileLibrary, shared: Set<string> | undefined) {
    super();
    this.index = options.index;
    this.dir = options.dir;
    this.server = server;
    this.#shared = shared;
    this.seeder = new Seeder({ library, index: options.index, contentPort: this.port, refreshMs: options.refreshMs, rescanMs: options.rescanMs });
    server.on('event', (event) => this.emit('event', { type: 'server', event }));
    this.seeder.on('event', (event) => this.emit('event', { type: 'seeder', event }));
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

  get activeDownloads(): number {
    return this.#downloads.size;
  }

  /**
   * Downloads `name` into the peer's folder from every holder but this peer itself; once it
   * is verified it is served and registered at once.
   */
  async download(name: string, options: PeerDownloadOptions = {}): Promise<DownloadResult> {
    if (this.#closing) throw new Error('the peer is closing');
    const id = this.#nextId++;
    const controller = new AbortController();
    const run = download({
      ...options,
      index: this.index,
      dir: this.dir,
      filename: name,
      selfPort: this.port,
      signal: controller.signal,
      onProgress: (progress) => this.emit('event', { type: 'download-progress', id, name, progress }),
      onEvent: (event) => this.emit('event', { type: 'download-event', id, name, event }),
    }).then(async (result) => {
      this.#shared?.add(name);
      await this.seeder.share(name);
      return { ...result, registered: this.seeder.names.includes(name) };
    });
    this.#downloads.set(id, { controller, done: run.catch(() => {}) });
    this.emit('event', { type: 'download-started', id, name });
    try {
      const result = await run;
      this.emit('event', { type: 'download-done', id, name, result });
      return result;
    } catch (err) {
      this.emit('event', { type: 'download-failed', id, name, error: err as Error });
      throw err;
    } finally {
      this.#downloads.delete(id);
    }
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
