/**
 * The index's socket adapter: a dgram socket feeding the pure handler, plus the timer that
 * sweeps expired registrations. Emits every handler event as 'event' for the CLI to log; it
 * never prints.
 *
 * It also holds what limits abuse (defaults in INDEX_LIMIT_DEFAULTS): per-source buckets of
 * new registrations and of O requests (given to the handler), the per-address byte bucket
 * every O answer is charged to, and the streamer that sends long listings in paced slices.
 * `S`, `T` and `R` answers are one PDU per PDU and touch no bucket here.
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { normalizeAddress } from '../protocol/fields.js';
import { listenError } from '../protocol/errors.js';
import { encodeError } from '../protocol/index-messages.js';
import { ErrorCode } from '../protocol/errors.js';
import { PDU_SIZE } from '../protocol/pdu.js';
import { createIndexHandler, type HandleResult, type IndexEvent, type IndexHandler } from './handler.js';
import type { ListCookies } from './list-cookie.js';
import { ListStreamer } from './list-streamer.js';
import { TokenBuckets } from './token-buckets.js';
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
  /** Most PDUs an O may bring an address with no registration and no cookie. Default 4. */
  maxListPdusUnproven?: number;
  /** Bytes per second of O answers to one address (0: no limit). Default 1,000,000. */
  maxReplyRate?: number;
  /** New registrations per second from one source (0: no limit). Default 1000, burst 10 s. */
  registerRate?: number;
  /** O requests per second from one source (0: no limit). Default 10, burst 2 s. */
  listRate?: number;
  /** Long listings being sent at once; one more gets E 6. Default 16. */
  maxListings?: number;
  /** Listing cookies (tests pass one with a known secret). Default: a fresh secret. */
  cookies?: ListCookies;
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

/**
 * Live counters read on demand (by /metrics): plain typed arrays, so counting costs one
 * increment per datagram. `byType[c]` counts the 100-byte datagrams whose type byte is `c`
 * and that reached the handler: for R, S, T, O and E these are exactly the requests decoded.
 * `refusedByCode[n]` counts the E n answers sent (n = 3..6; an S that finds nothing is an E 3).
 */
export interface IndexCounters {
  readonly byType: Float64Array;
  readonly refusedByCode: Float64Array;
}

export type IndexServerEvent = IndexEvent | { type: 'expired'; holder: Holder };

/** Defaults of the abuse limits (the CLI shows the same ones). */
export const INDEX_LIMIT_DEFAULTS = {
  maxRegistrations: 2_000_000,
  maxPerSource: 10_000,
  maxPerPrefix: 50_000,
  maxListPdusUnproven: 4,
  maxReplyRate: 1_000_000,
  registerRate: 1000,
  listRate: 10,
  maxListings: 16,
} as const;

/** Bytes an address may be sent at once: one O answer built whole (64 PDUs). */
const REPLY_BURST = 64 * PDU_SIZE;

/** A bucket of `perSecond` with `seconds` of burst (at least `least`); 0 means none. */
const bucketOf = (perSecond: number, seconds: number) => new TokenBuckets({ perSecond, burst: Math.max(1, perSecond * seconds) });

export class IndexServer extends EventEmitter<{ event: [IndexServerEvent]; error: [Error] }> {
  readonly registry: RegistryStore;
  readonly stats: IndexStats = { received: 0, dropped: 0, refused: 0, replies: 0 };
  readonly counters: IndexCounters = { byType: new Float64Array(256), refusedByCode: new Float64Array(16) };
  readonly #socket: dgram.Socket;
  readonly #handle: IndexHandler;
  readonly #now: () => number;
  readonly #replyBudget: TokenBuckets;
  readonly #streamer: ListStreamer;
  readonly #busyListing = encodeError(ErrorCode.Busy, 'too many listings in progress, try again later');
  #sweep: NodeJS.Timeout | undefined;
  #closed: Promise<void> | undefined;

  private constructor(socket: dgram.Socket, options: IndexServerOptions) {
    super();
    this.#socket = socket;
    this.#now = options.now ?? Date.now;
    this.registry = options.store ?? new Registry({ ttlMs: (options.ttlSeconds ?? 90) * 1000, ...options.limits });
    const d = INDEX_LIMIT_DEFAULTS;
    this.#handle = createIndexHandler({
      registry: this.registry,
      trustClaimedAddresses: options.trustClaimedAddresses,
      maxListPdusUnproven: options.maxListPdusUnproven ?? d.maxListPdusUnproven,
      cookies: options.cookies,
      registerRate: bucketOf(options.registerRate ?? d.registerRate, 10),
      listRate: bucketOf(options.listRate ?? d.listRate, 2),
    });
    // A burst of one answer built at once (64 PDUs): more at once overflows a client's
    // receive buffer (about 200 datagrams by default on Linux) before it can read them.
    this.#replyBudget = new TokenBuckets({ perSecond: options.maxReplyRate ?? d.maxReplyRate, burst: REPLY_BURST });
    this.#streamer = new ListStreamer({
      registry: this.registry,
      replyBudget: this.#replyBudget,
      maxJobs: options.maxListings ?? d.maxListings,
      send: (pdu, port, address) => {
        this.stats.replies++;
        this.#socket.send(pdu, port, address);
      },
      onEnd: (from, pdus, complete) => {
        if (complete && this.listenerCount('event') > 0) this.emit('event', { type: 'listed', from, pdus });
      },
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

  /** Long listings being sent now. */
  get listings(): number {
    return this.#streamer.active;
  }

  address(): { address: string; port: number } {
    const { address, port } = this.#socket.address();
    return { address, port };
  }

  /** Stops the sweep timer and closes the socket. Safe to call more than once. */
  close(): Promise<void> {
    this.#closed ??= new Promise((resolve) => {
      clearInterval(this.#sweep);
      this.#streamer.close();
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
    if (msg.length === PDU_SIZE) this.counters.byType[msg[0]]++;
    const now = this.#now();
    const result = this.#handle(msg, from, now);
    // Only O answers (one PDU in, up to a listing out) are charged; the S path checks one field.
    const { replies, event } =
      result.event?.type === 'listed' || result.stream || (result.event?.type === 'refused' && result.event.request === 'O') ? this.#answerList(result, from, rinfo, now) : result;
    for (const reply of replies) this.#socket.send(reply, rinfo.port, rinfo.address);
    this.stats.replies += replies.length;
    if (event) {
      if (event.type === 'dropped' || event.type === 'limited') this.stats.dropped++;
      else if (event.type === 'refused') {
        this.stats.refused++;
        this.counters.refusedByCode[event.code & 15]++;
      } else if (event.type === 'searched' && !event.found) this.counters.refusedByCode[ErrorCode.NotFound]++;
      if (this.listenerCount('event') > 0) this.emit('event', event);
    }
  }

  /** Starts a streamed listing, or charges a short answer to the address's byte bucket. */
  #answerList(result: HandleResult, from: string, rinfo: dgram.RemoteInfo, now: number): HandleResult {
    if (result.stream) {
      if (this.#streamer.start(from, rinfo.address, rinfo.port, now)) return result;
      result = { replies: [this.#busyListing], event: { type: 'refused', request: 'O', from, code: ErrorCode.Busy, reason: 'too many listings in progress' } };
    }
    if (this.#replyBudget.take(from, result.replies.length * PDU_SIZE, performance.now())) return result;
    return { replies: [], event: { type: 'limited', request: 'O', from, reason: 'over the reply rate' } };
  }
}
