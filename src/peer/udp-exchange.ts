/**
 * One request to the index over a connected UDP socket: a timeout per try, retries with
 * backoff, "port unreachable" noticed, and an optional overall deadline. The socket is
 * connected to the index's address and port, so the kernel drops datagrams from anywhere
 * else: a forger on another port cannot answer for the index.
 */
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { PeerdexError } from '../protocol/errors.js';
import { formatHostPort } from '../protocol/fields.js';
import { decodeIndexReply, type IndexReply } from '../protocol/index-messages.js';

export interface ExchangeTiming {
  timeoutMs: number;
  tries: number;
  backoff: number;
  maxTimeoutMs: number;
  refusedTries: number;
}

/** What a reply handler decides: done with a value, ignore the datagram, or note a refusal. */
export type Verdict<T> = { done: T } | { retry: PeerdexError } | undefined;

export interface ExchangeSpec<T> {
  pdu: Buffer;
  /** Runs before each send after the first; true means the last attempt made progress. */
  onTry?: () => boolean;
  /** Returns a verdict; a throw ends the exchange with that error. */
  onReply: (reply: IndexReply, tryNo: number) => Verdict<T>;
  /** Overall limit in ms, and what the index failed to send within it. */
  deadline?: { ms: number; what: string };
}

/** Bound on attempts that made progress and so were not counted as tries (O only). */
const MAX_FREE_TRIES = 1000;

/**
 * Looks `host` up once: a name that does not resolve fails at once with the resolver's error
 * instead of after every try. IPv4 is preferred, as the index listens on IPv4 by default.
 */
async function resolve(host: string): Promise<{ address: string; family: number }> {
  const family = isIP(host);
  if (family !== 0) return { address: host, family };
  let found;
  try {
    const all = await lookup(host, { all: true });
    found = all.find((a) => a.family === 4) ?? all[0];
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new PeerdexError('ERR_CONNECTION', `cannot resolve index host ${host}: ${reason}`, { cause: err });
  }
  if (!found) throw new PeerdexError('ERR_CONNECTION', `cannot resolve index host ${host}: no address`);
  return found;
}

/**
 * A UDP socket connected to `host:port`. (An index bound to a wildcard address on a host with
 * several addresses must reply from the address it was asked on; bind it to one if not.)
 */
export async function connectUdp(host: string, port: number): Promise<dgram.Socket> {
  const { address, family } = await resolve(host);
  const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((ok, fail) => {
      socket.once('error', fail);
      socket.connect(port, address, () => {
        socket.off('error', fail);
        ok();
      });
    });
  } catch (err) {
    socket.close();
    throw new PeerdexError('ERR_CONNECTION', `cannot reach index ${formatHostPort(host, port)}: ${(err as Error).message}`, { cause: err });
  }
  return socket;
}

/** Sends the request on `socket` (which it closes) until `onReply` says done or the tries run out. */
export function runExchange<T>(socket: dgram.Socket, label: string, timing: ExchangeTiming, spec: ExchangeSpec<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => new UdpExchange(socket, label, timing, spec, resolve, reject).start());
}

class UdpExchange<T> {
  #tryNo = 0;
  #freeTries = 0;
  #wait: number;
  #timer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #lastRefusal: PeerdexError | undefined;
  /** Whether any datagram came from the index in this exchange. */
  #heard = false;
  /** The last try answered by "port unreachable", and how many tries were. */
  #refusedTry = 0;
  #refused = 0;
  #settled = false;

  constructor(
    readonly socket: dgram.Socket,
    readonly label: string,
    readonly timing: ExchangeTiming,
    readonly spec: ExchangeSpec<T>,
    readonly resolve: (value: T) => void,
    readonly reject: (err: unknown) => void,
  ) {
    this.#wait = timing.timeoutMs;
  }

  start(): void {
    const { deadline } = this.spec;
    if (deadline) {
      const text = `index ${this.label} did not finish sending ${deadline.what} within ${deadline.ms / 1000} s`;
      this.#deadline = setTimeout(() => this.#fail(new PeerdexError('ERR_TIMEOUT', text)), deadline.ms);
    }
    this.socket.on('error', this.#onSocketError);
    this.socket.on('message', (msg) => this.#onMessage(msg));
    this.#attempt();
  }

  #attempt(): void {
    if (this.#tryNo > 0 && this.spec.onTry?.() === true && this.#freeTries < MAX_FREE_TRIES) {
      this.#freeTries++;
      this.#tryNo--; // the last attempt made progress: it does not count against the tries
    }
    const { tries } = this.timing;
    if (this.#tryNo === tries) {
      this.#fail(this.#lastRefusal ?? new PeerdexError('ERR_TIMEOUT', `index ${this.label} did not answer after ${tries} ${tries === 1 ? 'try' : 'tries'}`));
      return;
    }
    this.#tryNo++;
    this.socket.send(this.spec.pdu, this.#onSocketError);
    this.#timer = setTimeout(() => this.#attempt(), this.#wait);
    this.#wait = Math.min(this.#wait * this.timing.backoff, this.timing.maxTimeoutMs);
  }

  #onMessage(msg: Buffer): void {
    this.#heard = true;
    let reply: IndexReply;
    try {
      reply = decodeIndexReply(msg);
    } catch {
      return; // garbage: keep waiting
    }
    let verdict: Verdict<T>;
    try {
      verdict = this.spec.onReply(reply, this.#tryNo);
    } catch (err) {
      this.#fail(err);
      return;
    }
    if (verdict && 'done' in verdict) this.#settle(() => this.resolve(verdict.done));
    else if (verdict && 'retry' in verdict) this.#lastRefusal = verdict.retry;
  }

  /** Other socket errors are treated as silence, then retried. */
  readonly #onSocketError = (err: NodeJS.ErrnoException | null): void => {
    if (err?.code === 'ECONNREFUSED') this.#onRefused();
  };

  /**
   * ICMP port unreachable reaches a connected socket as ECONNREFUSED (an 'error' event, or a
   * failed send). Before the index has said anything, a few tries in a row refused mean
   * nothing listens there. Once it has answered, a refusal is taken for a restart in
   * progress and, like silence, left to the timeouts.
   */
  #onRefused(): void {
    if (this.#heard || this.#refusedTry === this.#tryNo) return;
    this.#refusedTry = this.#tryNo;
    if (++this.#refused < Math.min(this.timing.refusedTries, this.timing.tries)) return;
    this.#fail(new PeerdexError('ERR_CONNECTION', `nothing is listening on UDP ${this.label} (is index-server running?)`));
  }

  #fail(err: unknown): void {
    this.#settle(() => this.reject(err));
  }

  #settle(report: () => void): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
    this.socket.close();
    report();
  }
}
