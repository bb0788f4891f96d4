/**
 * Talks to the index over UDP: one request, a timeout, retries with backoff (udp-exchange.ts).
 * Every exchange uses its own socket, connected to the index, so a late or duplicated reply
 * to an earlier request can never be taken for the answer to this one, and nothing but the
 * index's own address and port can answer.
 */
import { ErrorCode, PeerdexError } from '../protocol/errors.js';
import { formatHostPort } from '../protocol/fields.js';
import {
  encodeHolder,
  encodeLeave,
  encodeList,
  encodeSearch,
  type Holder,
  type IndexReply,
} from '../protocol/index-messages.js';
import { LIST_LIMITS, ListAssembler, type ServerListing } from './list-assembler.js';
import { connectUdp, runExchange, type ExchangeSpec, type ExchangeTiming, type Verdict } from './udp-exchange.js';

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
  /**
   * Tries answered by "port unreachable" (and nothing else) after which the exchange ends
   * with "nothing is listening". Default 3 (within about 0.8 s with the default timeouts):
   * more than one, so an index that is restarting gets a moment to come back.
   */
  refusedTries?: number;
  /** Longest a whole O listing may take, in ms, retries included. Default 60,000. */
  listDeadlineMs?: number;
  /** Most servers a listing may announce. Default 2,000,000 (the index's registration cap). */
  maxListServers?: number;
  /** Most packets of names a listing may announce in all. Default 2,000,000 (likewise). */
  maxListNames?: number;
}

export class IndexClient {
  readonly host: string;
  readonly port: number;
  readonly #timing: ExchangeTiming;
  readonly #listDeadlineMs: number;
  readonly #listLimits: { maxServers: number; maxNames: number };
  readonly #options: IndexClientOptions;

  constructor(options: IndexClientOptions) {
    this.#options = options;
    this.host = options.host;
    this.port = options.port;
    this.#timing = {
      timeoutMs: options.timeoutMs ?? 300,
      tries: options.tries ?? 8,
      backoff: options.backoff ?? 1.6,
      maxTimeoutMs: options.maxTimeoutMs ?? 1500,
      refusedTries: options.refusedTries ?? 3,
    };
    this.#listDeadlineMs = options.listDeadlineMs ?? 60_000;
    this.#listLimits = { maxServers: options.maxListServers ?? LIST_LIMITS.maxServers, maxNames: options.maxListNames ?? LIST_LIMITS.maxNames };
  }

  /**
   * The same index with other waits and tries: `peer serve` stopping sends its deregistrations
   * with one or two short tries, so an index that is down cannot hold up the stop.
   */
  withTiming(timing: Pick<IndexClientOptions, 'timeoutMs' | 'tries' | 'maxTimeoutMs' | 'refusedTries'>): IndexClient {
    return new IndexClient({ ...this.#options, ...timing });
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
    return this.#exchange({
      pdu: encodeSearch(filename),
      onReply: (reply) => {
        if (reply.type === 'S' && reply.holder.filename === filename) {
          // An S reply must name its holder: an empty addr ("the sender") makes no sense from
          // the index. It is noted and waited past rather than final, so one forged datagram
          // cannot cut a search short while the true answer is on its way; if no good answer
          // comes, the error says what the index sent instead of "did not answer".
          if (reply.holder.addr === '') return { retry: new PeerdexError('ERR_MALFORMED_PDU', `index ${this.label} answered the search for "${filename}" with no holder address`) };
          return { done: reply.holder };
        }
        if (reply.type === 'E') {
          if (reply.code === ErrorCode.NotFound) throw new PeerdexError('ERR_NOT_FOUND', `no peer has "${filename}"`);
          return this.#remoteError(reply, 'search');
        }
        return undefined;
      },
    });
  }

  /** O: the whole listing, asked again until every server's packets have arrived. */
  list(): Promise<ServerListing[]> {
    const assembler = new ListAssembler(this.#listLimits);
    return this.#exchange({
      pdu: encodeList(),
      // An attempt that completed some servers does not use up a try: a long listing on a
      // lossy network gets through group by group (bounded by the deadline).
      onTry: () => assembler.startAttempt(),
      onReply: (reply) => {
        if (reply.type === 'E') return this.#remoteError(reply, 'list');
        if (reply.type !== 'O') return undefined;
        try {
          assembler.add(reply.fields);
        } catch (err) {
          const e = err as PeerdexError;
          throw new PeerdexError(e.code, `index ${this.label} ${e.message}`);
        }
        const complete = assembler.result();
        return complete ? { done: complete } : undefined;
      },
      deadline: { ms: this.#listDeadlineMs, what: 'its listing' },
    });
  }

  /** E 1: tells the index this address is leaving. No reply comes; sent twice against loss. */
  async leave(): Promise<void> {
    const socket = await connectUdp(this.host, this.port);
    const pdu = encodeLeave();
    try {
      for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => socket.send(pdu, () => resolve()));
    } finally {
      socket.close();
    }
  }

  #ackExchange(pdu: Buffer, filename: string, what: string): Promise<void> {
    return this.#exchange({
      pdu,
      onReply: (reply, tryNo) => {
        if (reply.type === 'A' && reply.filename === filename) return { done: undefined };
        if (reply.type === 'E') {
          // T is not idempotent on the wire: when the A to an earlier try was lost, the retry
          // finds nothing left and gets E 3. After a retry that means "done", not "never existed".
          if (reply.code === ErrorCode.NotFound && what === 'deregister' && tryNo > 1) return { done: undefined };
          if (reply.code === ErrorCode.NotFound) throw new PeerdexError('ERR_NOT_FOUND', `index ${this.label} has no such registration of "${filename}"`, { remoteCode: reply.code });
          return this.#remoteError(reply, what);
        }
        return undefined;
      },
    });
  }

  /** E 2 and E 6 mean "try again"; anything else is final. */
  #remoteError(reply: Extract<IndexReply, { type: 'E' }>, what: string): Verdict<never> {
    const err = new PeerdexError('ERR_REMOTE', `index ${this.label} refused ${what}: E ${reply.code} ${reply.description}`, { remoteCode: reply.code });
    if (reply.code === ErrorCode.Retry || reply.code === ErrorCode.Busy) return { retry: err };
    throw err;
  }

  #exchange<T>(spec: ExchangeSpec<T>): Promise<T> {
    return connectUdp(this.host, this.port).then((socket) => runExchange(socket, this.label, this.#timing, spec));
  }
}
