/**
 * Talks to the index over UDP: one request, a timeout, retries with backoff (udp-exchange.ts).
 * Every exchange uses its own socket, connected to the index, so a late or duplicated reply
 * to an earlier request can never be taken for the answer to this one, and nothing but the
 * index's own address and port can answer.
 *
 * Failover: with several indexes (`failover`), each retry goes to the next index of the
 * list, and the next request starts at the index that answered last, so a client whose first
 * index is down pays for it once, not on every request.
 */
import { ErrorCode, PeerdexError } from '../protocol/errors.js';
import { formatHostPort } from '../protocol/fields.js';
import { encodeHolder, encodeLeave, encodeList, encodeSearch, type Holder, type IndexReply } from '../protocol/index-messages.js';
import { encodePdu } from '../protocol/pdu.js';
import { LIST_LIMITS, ListAssembler, listCookieIn, type ServerListing } from './list-assembler.js';
import { connectUdp, runExchange, type ExchangeSpec, type ExchangeTiming, type Verdict } from './udp-exchange.js';

export interface IndexAddress {
  host: string;
  port: number;
}

export interface IndexClientOptions {
  /** The (first) index. */
  host: string;
  port: number;
  /** Further indexes of the same registry, asked in turn when one does not answer. */
  failover?: readonly IndexAddress[];
  /** First wait for a reply, in ms; it grows by `backoff` each try. Default 300. */
  timeoutMs?: number;
  /**
   * Tries before giving up, over all indexes (at least one per index). Default 8: at 20% loss
   * each way one request then fails 1 time in 3,500.
   */
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

/** Where the next request starts: shared by a client and its withTiming() copies. */
interface Route {
  preferred: number;
}

export class IndexClient {
  /** The first index of the list. */
  readonly host: string;
  readonly port: number;
  /** Every index of the list, the first one first. */
  readonly indexes: readonly IndexAddress[];
  readonly #route: Route;
  readonly #timing: ExchangeTiming;
  readonly #listDeadlineMs: number;
  readonly #listLimits: { maxServers: number; maxNames: number };
  readonly #options: IndexClientOptions;

  /** `route` is internal: withTiming() copies share where the next request starts. */
  constructor(options: IndexClientOptions, route: Route = { preferred: 0 }) {
    this.#options = options;
    this.host = options.host;
    this.port = options.port;
    this.indexes = [{ host: options.host, port: options.port }, ...(options.failover ?? [])];
    this.#route = route;
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
   * The same indexes with other waits and tries: `peer serve` stopping sends its
   * deregistrations with one or two short tries (still at least one per index), so an index
   * that is down cannot hold up the stop. The copy starts where this client would.
   */
  withTiming(timing: Pick<IndexClientOptions, 'timeoutMs' | 'tries' | 'maxTimeoutMs' | 'refusedTries'>): IndexClient {
    return new IndexClient({ ...this.#options, ...timing }, this.#route);
  }

  /** The index, or the list as given: `127.0.0.1:9000,127.0.0.1:9001`. */
  get label(): string {
    return this.indexes.map((a) => formatHostPort(a.host, a.port)).join(',');
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
      onReply: (reply, _tryNo, from) => {
        if (reply.type === 'S' && reply.holder.filename === filename) {
          // An S reply must name its holder: an empty addr ("the sender") makes no sense from
          // the index. It is noted and waited past rather than final, so one forged datagram
          // cannot cut a search short while the true answer is on its way; if no good answer
          // comes, the error says what the index sent instead of "did not answer".
          if (reply.holder.addr === '') return { retry: new PeerdexError('ERR_MALFORMED_PDU', `index ${from.label} answered the search for "${filename}" with no holder address`) };
          return { done: reply.holder };
        }
        if (reply.type === 'E') {
          if (reply.code === ErrorCode.NotFound) throw new PeerdexError('ERR_NOT_FOUND', `no peer has "${filename}"`);
          return this.#remoteError(reply, 'search', from.label);
        }
        return undefined;
      },
    });
  }

  /**
   * O: the whole listing, asked again until every server's packets have arrived. It is
   * gathered from one index at a time (packets of two indexes' answers do not mix).
   */
  list(): Promise<ServerListing[]> {
    let assembler = new ListAssembler(this.#listLimits);
    let source: number | undefined;
    const spec: ExchangeSpec<ServerListing[]> = {
      pdu: encodeList(),
      // An attempt that completed some servers does not use up a try (nor move on to the
      // next index): a long listing on a lossy network gets through group by group (bounded
      // by the deadline).
      onTry: () => assembler.startAttempt(),
      onReply: (reply, _tryNo, from) => {
        if (reply.type === 'E') {
          // E 6 with a cookie (docs/protocol.md): the next tries carry it to prove this address.
          const cookie = listCookieIn(reply);
          if (cookie !== undefined) spec.pdu = encodePdu('O', [cookie]);
          return this.#remoteError(reply, 'list', from.label);
        }
        if (reply.type !== 'O' || !from.current) return undefined;
        if (source !== from.index) [assembler, source] = [new ListAssembler(this.#listLimits), from.index];
        try {
          assembler.add(reply.fields);
        } catch (err) {
          const e = err as PeerdexError;
          throw new PeerdexError(e.code, `index ${from.label} ${e.message}`);
        }
        const complete = assembler.result();
        return complete ? { done: complete } : undefined;
      },
      deadline: { ms: this.#listDeadlineMs, what: 'its listing' },
    };
    return this.#exchange(spec);
  }

  /**
   * E 1: tells every index of the list this address is leaving. No reply comes; sent twice
   * against loss. Fails only when no index could be reached.
   */
  async leave(): Promise<void> {
    const pdu = encodeLeave();
    const sent = await Promise.allSettled(
      this.indexes.map(async ({ host, port }) => {
        const socket = await connectUdp(host, port);
        try {
          for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => socket.send(pdu, () => resolve()));
        } finally {
          socket.close();
        }
      }),
    );
    const failed = sent.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length === sent.length) throw failed[0].reason;
  }

  #ackExchange(pdu: Buffer, filename: string, what: string): Promise<void> {
    return this.#exchange({
      pdu,
      onReply: (reply, tryNo, from) => {
        if (reply.type === 'A' && reply.filename === filename) return { done: undefined };
        if (reply.type === 'E') {
          // T is not idempotent on the wire: when the A to an earlier try was lost, the retry
          // finds nothing left and gets E 3. After a retry that means "done", not "never existed".
          if (reply.code === ErrorCode.NotFound && what === 'deregister' && tryNo > 1) return { done: undefined };
          if (reply.code === ErrorCode.NotFound)
            throw new PeerdexError('ERR_NOT_FOUND', `index ${from.label} has no such registration of "${filename}"`, { remoteCode: reply.code });
          return this.#remoteError(reply, what, from.label);
        }
        return undefined;
      },
    });
  }

  /** E 2 and E 6 mean "try again"; anything else is final. */
  #remoteError(reply: Extract<IndexReply, { type: 'E' }>, what: string, label: string): Verdict<never> {
    const err = new PeerdexError('ERR_REMOTE', `index ${label} refused ${what}: E ${reply.code} ${reply.description}`, { remoteCode: reply.code });
    if (reply.code === ErrorCode.Retry || reply.code === ErrorCode.Busy) return { retry: err };
    throw err;
  }

  /** Runs one exchange from the preferred index on; the index that answers is preferred next. */
  async #exchange<T>(spec: ExchangeSpec<T>): Promise<T> {
    const { value, index } = await runExchange(this.indexes, this.label, this.#timing, spec, this.#route.preferred);
    this.#route.preferred = index;
    return value;
  }
}
