/**
 * The index's socket adapter: a dgram socket feeding the pure handler, plus the timer that
 * sweeps expired registrations. Emits every handler event as 'event' for the CLI to log; it
 * never prints.
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { normalizeAddress } from '../protocol/fields.js';
import { listenError } from '../protocol/errors.js';
import { createIndexHandler, type IndexEvent, type IndexHandler } from './handler.js';
import { Registry } from './registry.js';
import type { RegistryLimits, RegistryStore } from './store.js';
import type { Holder } from '../protocol/index-messages.js';

export interface IndexServerOptions {
  /** UDP port; 0 picks a free one. Default 9000. */
  port?: number;
  /** Address to bind. Default 0.0.0.0; '::' gives a dual-stack socket. */
  host?: string;
  /** Seconds a registration lives without a refreshing R. Default 90. */
  ttlSeconds?: number;
  trustClaimedAddresses?: boolean;
  limits?: Partial<RegistryLimits>;
  maxListPdusUnproven?: number;
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number;
  /**
   * The registry to serve (a replicated one for a cluster). Default: a new in-memory
   * Registry built from ttlSeconds and limits. Its TTL is the store's own.
   */
  store?: RegistryStore;
}

export interface IndexStats {
  received: number;
  dropped: number;
  refused: number;
  replies: number;
}

export type IndexServerEvent = IndexEvent | { type: 'expired'; holder: Holder };

export class IndexServer extends EventEmitter<{ event: [IndexServerEvent]; error: [Error] }> {
  readonly registry: RegistryStore;
  readonly stats: IndexStats = { received: 0, dropped: 0, refused: 0, replies: 0 };
  readonly #socket: dgram.Socket;
  readonly #handle: IndexHandler;
  readonly #now: () => number;
  #sweep: NodeJS.Timeout | undefined;
  #closed: Promise<void> | undefined;

  private constructor(socket: dgram.Socket, options: IndexServerOptions) {
    super();
    this.#socket = socket;
    this.#now = options.now ?? Date.now;
    this.registry = options.store ?? new Registry({ ttlMs: (options.ttlSeconds ?? 90) * 1000, ...options.limits });
    this.#handle = createIndexHandler({
      registry: this.registry,
      trustClaimedAddresses: options.trustClaimedAddresses,
      maxListPdusUnproven: options.maxListPdusUnproven,
    });
    socket.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo));
    // A send to a vanished client can report ICMP errors here; they must not stop the server.
    socket.on('error', (err) => this.emit('error', err));
  }

  /** Binds the socket and starts serving. Rejects with ERR_USAGE when the port is taken. */
  static async listen(options: IndexServerOptions = {}): Promise<IndexServer> {
    const host = options.host ?? '0.0.0.0';
    const socket = dgram.createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4', ipv6Only: false });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        socket.close();
        reject(listenError('UDP', host, options.port ?? 9000, err));
      };
      socket.once('error', onError);
      socket.bind(options.port ?? 9000, host, () => {
        socket.off('error', onError);
        resolve();
      });
    });
    const server = new IndexServer(socket, options);
    server.#startSweeping();
    return server;
  }

  address(): { address: string; port: number } {
    const { address, port } = this.#socket.address();
    return { address, port };
  }

  /** Stops the sweep timer and closes the socket. Safe to call more than once. */
  close(): Promise<void> {
    this.#closed ??= new Promise((resolve) => {
      clearInterval(this.#sweep);
      this.#socket.close(() => resolve());
    });
    return this.#closed;
  }

  /** Runs one expiry sweep now (also runs on a timer). */
  sweep(): number {
    return this.registry.expire(this.#now(), (holder) => this.emit('event', { type: 'expired', holder }));
  }

  #startSweeping(): void {
    // Lookups skip expired entries anyway; the sweep only reclaims memory and logs expiry.
    const every = Math.max(50, Math.min(this.registry.ttlMs / 4, 10_000));
    this.#sweep = setInterval(() => this.sweep(), every);
    this.#sweep.unref();
  }

  #onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    this.stats.received++;
    const from = normalizeAddress(rinfo.address);
    if (rinfo.port === 0) {
      // Only a forged datagram comes from port 0, and dgram's send() throws for it.
      this.stats.dropped++;
      if (this.listenerCount('event') > 0) this.emit('event', { type: 'dropped', from, bytes: msg.length });
      return;
    }
    const { replies, event } = this.#handle(msg, from, this.#now());
    for (const reply of replies) this.#socket.send(reply, rinfo.port, rinfo.address);
    this.stats.replies += replies.length;
    if (event) {
      if (event.type === 'dropped') this.stats.dropped++;
      else if (event.type === 'refused') this.stats.refused++;
      if (this.listenerCount('event') > 0) this.emit('event', event);
    }
  }
}
