/**
 * Talks to the index over UDP: one request, a timeout, retries with backoff. Every exchange
 * uses its own socket, so a late or duplicated reply to an earlier request can never be
 * taken for the answer to this one.
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { ErrorCode, PeerdexError } from '../protocol/errors.js';
import { formatHostPort } from '../protocol/fields.js';
import {
  decodeIndexReply,
  encodeHolder,
  encodeLeave,
  encodeList,
  encodeSearch,
  type Holder,
  type IndexReply,
} from '../protocol/index-messages.js';
import { ListAssembler, type ServerListing } from './list-assembler.js';

export interface IndexClientOptions {
  host: string;
  port: number;
  /** First wait for a reply, in ms; it grows by `backoff` each try. Default 300. */
  timeoutMs?: number;
  /** Tries before giving up. Default 8: at 20% loss each way one request then fails 1 time in 3,500. */
  tries?: number;
  backoff?: number;
  /** Longest single wait, in ms. Default 1500 (all 8 tries end within about 9 s). */
  maxTimeoutMs?: number;
}

/** Bound on attempts that made progress and so were not counted as tries (O only). */
const MAX_FREE_TRIES = 1000;

/** What a reply handler decides: done with a value, ignore the datagram, or retry after a wait. */
type Verdict<T> = { done: T } | { retry: PeerdexError } | undefined;

export class IndexClient {
  readonly host: string;
  readonly port: number;
  readonly #timeoutMs: number;
  readonly #tries: number;
  readonly #backoff: number;
  readonly #maxTimeoutMs: number;

  constructor(options: IndexClientOptions) {
    this.host = options.host;
    this.port = options.port;
    this.#timeoutMs = options.timeoutMs ?? 300;
    this.#tries = options.tries ?? 8;
    this.#backoff = options.backoff ?? 1.6;
    this.#maxTimeoutMs = options.maxTimeoutMs ?? 1500;
  }

  get label(): string {
    return formatHostPort(this.host, this.port);
  }

  /** R: registers (or refreshes) `holder`; addr '' means "the address I send from". */
  register(holder: Holder): Promise<void> {
    return this.#ackExchange(encodeHolder('R', holder), holder.filename, 'register');
  }

  /** T: removes a registration made earlier from this address. */
  deregister(holder: Holder): Promise<void> {
    return this.#ackExchange(encodeHolder('T', holder), holder.filename, 'deregister');
  }

  /** S: the next holder of `filename`. Rejects with ERR_NOT_FOUND when nobody has it. */
  search(filename: string): Promise<Holder> {
    return this.#exchange(encodeSearch(filename), () => {}, (reply) => {
      if (reply.type === 'S' && reply.holder.filename === filename) return { done: reply.holder };
      if (reply.type === 'E') {
        if (reply.code === ErrorCode.NotFound) throw new PeerdexError('ERR_NOT_FOUND', `no peer has "${filename}"`);
        return this.#remoteError(reply, 'search');
      }
      return undefined;
    });
  }

  /** O: the whole listing, asked again until every server's packets have arrived. */
  list(): Promise<ServerListing[]> {
    const assembler = new ListAssembler();
    // An attempt that completed some servers does not use up a try: a long listing on a
    // lossy network gets through group by group (at most one free attempt per server).
    return this.#exchange(encodeList(), () => assembler.startAttempt(), (reply) => {
      if (reply.type === 'E') return this.#remoteError(reply, 'list');
      if (reply.type !== 'O') return undefined;
      assembler.add(reply.fields);
      const complete = assembler.result();
      return complete ? { done: complete } : undefined;
    });
  }

  /** E 1: tells the index this address is leaving. No reply comes; sent twice against loss. */
  async leave(): Promise<void> {
    const socket = this.#socket();
    const pdu = encodeLeave();
    try {
      for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => socket.send(pdu, this.port, this.host, () => resolve()));
    } finally {
      socket.close();
    }
  }

  #ackExchange(pdu: Buffer, filename: string, what: string): Promise<void> {
    return this.#exchange(pdu, () => {}, (reply, tryNo) => {
      if (reply.type === 'A' && reply.filename === filename) return { done: undefined };
      if (reply.type === 'E') {
        // T is not idempotent on the wire: when the A to an earlier try was lost, the retry
        // finds nothing left and gets E 3. After a retry that means "done", not "never existed".
        if (reply.code === ErrorCode.NotFound && what === 'deregister' && tryNo > 1) return { done: undefined };
        if (reply.code === ErrorCode.NotFound) throw new PeerdexError('ERR_NOT_FOUND', `index ${this.label} has no such registration of "${filename}"`, { remoteCode: reply.code });
        return this.#remoteError(reply, what);
      }
      return undefined;
    });
  }

  /** E 2 and E 6 mean "try again"; anything else is final. */
  #remoteError(reply: Extract<IndexReply, { type: 'E' }>, what: string): Verdict<never> {
    const err = new PeerdexError('ERR_REMOTE', `index ${this.label} refused ${what}: E ${reply.code} ${reply.description}`, { remoteCode: reply.code });
    if (reply.code === ErrorCode.Retry || reply.code === ErrorCode.Busy) return { retry: err };
    throw err;
  }

  #socket(): dgram.Socket {
    const socket = dgram.createSocket(isIP(this.host) === 6 ? 'udp6' : 'udp4');
    socket.on('error', () => {}); // ICMP port unreachable etc.: treated as silence, then retried
    return socket;
  }

  /**
   * Sends `pdu` and feeds each reply to `onReply` until it returns `done`. A try ends at its
   * timeout (or a `retry` verdict); `onTry` runs before each send.
   */
  #exchange<T>(pdu: Buffer, onTry: () => boolean | void, onReply: (reply: IndexReply, tryNo: number) => Verdict<T>): Promise<T> {
    const socket = this.#socket();
    let lastRefusal: PeerdexError | undefined;
    return new Promise<T>((resolve, reject) => {
      let tryNo = 0;
      let timer: NodeJS.Timeout | undefined;
      let wait = this.#timeoutMs;
      const finish = (fn: () => void) => {
        clearTimeout(timer);
        socket.close();
        fn();
      };
      let freeTries = 0;
      const attempt = () => {
        if (tryNo > 0 && onTry() === true && freeTries < MAX_FREE_TRIES) {
          freeTries++;
          tryNo--; // the last attempt made progress: it does not count against the tries
        }
        if (tryNo === this.#tries) {
          const err = lastRefusal ?? new PeerdexError('ERR_TIMEOUT', `index ${this.label} did not answer after ${this.#tries} ${this.#tries === 1 ? 'try' : 'tries'}`);
          return finish(() => reject(err));
        }
        tryNo++;
        socket.send(pdu, this.port, this.host);
        timer = setTimeout(attempt, wait);
        wait = Math.min(wait * this.#backoff, this.#maxTimeoutMs);
      };
      socket.on('message', (msg) => {
        let verdict: Verdict<T>;
        try {
          verdict = onReply(decodeIndexReply(msg), tryNo);
        } catch (err) {
          if ((err as PeerdexError).code === 'ERR_MALFORMED_PDU') return; // garbage: keep waiting
          return finish(() => reject(err));
        }
        if (verdict && 'done' in verdict) finish(() => resolve(verdict.done));
        else if (verdict && 'retry' in verdict) lastRefusal = verdict.retry;
      });
      attempt();
    });
  }
}
