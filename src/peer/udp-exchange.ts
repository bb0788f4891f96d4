/**
 * One request to the index over connected UDP sockets: a timeout per try, retries with
 * backoff, "port unreachable" noticed, and an optional overall deadline. Each socket is
 * connected to one index's address and port, so the kernel drops datagrams from anywhere
 * else: a forger on another port cannot answer for the index.
 *
 * Failover: given several indexes, each retry goes to the next one of the list (a socket is
 * opened for an index when it is first asked), and an answer from any of them ends the
 * exchange. "Port unreachable" from an index moves on to the next at once when that one has
 * not refused yet. With one index, every try goes to it: the behaviour of a single index.
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

/** One index of the list: where it is and how it is named in messages. */
export interface ExchangeTarget {
  host: string;
  port: number;
}

/** Which index a reply came from, and whether it is the one the last try was sent to. */
export interface ReplySource {
  index: number;
  label: string;
  current: boolean;
}

export interface ExchangeSpec<T> {
  pdu: Buffer;
  /**
   * Runs before each send after the first; true means the last attempt made progress: it is
   * not counted as a try, and the next one goes to the same index.
   */
  onTry?: () => boolean;
  /** Returns a verdict; a throw ends the exchange with that error. */
  onReply: (reply: IndexReply, tryNo: number, from: ReplySource) => Verdict<T>;
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

/** What an exchange ended with, and which index of the list gave it. */
export interface ExchangeResult<T> {
  value: T;
  index: number;
}

/**
 * Sends the request to `targets[start]`, then each retry to the next index of the list, until
 * `onReply` says done or the tries run out (at least one per index). `label` names the whole
 * list in messages. Every socket it opens is closed when it ends.
 */
export function runExchange<T>(targets: readonly ExchangeTarget[], label: string, timing: ExchangeTiming, spec: ExchangeSpec<T>, start = 0): Promise<ExchangeResult<T>> {
  return new Promise<ExchangeResult<T>>((resolve, reject) => new UdpExchange(targets, label, timing, spec, resolve, reject, start).start());
}

/** One index of an exchange: its socket once connected, and what it did so far. */
interface Slot {
  index: number;
  label: string;
  target: ExchangeTarget;
  socket?: dgram.Socket;
  connecting?: boolean;
  /** Why no socket could be opened (the host does not resolve): this index is out. */
  failed?: PeerdexError;
  /** Whether any datagram came from this index in this exchange. */
  heard: boolean;
  /** Tries answered by "port unreachable" (and nothing else), and the last such try. */
  refused: number;
  refusedTry: number;
  /** The last try sent to this index. */
  lastTry: number;
  /** Sends waiting for the socket. */
  pending: number[];
}

class UdpExchange<T> {
  readonly #slots: Slot[];
  readonly #tries: number;
  /** Refusals after which an index counts as "nothing listens there". */
  readonly #refusedLimit: number;
  #current: Slot;
  #tryNo = 0;
  #freeTries = 0;
  #wait: number;
  #timer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #lastRefusal: PeerdexError | undefined;
  #settled = false;

  constructor(
    targets: readonly ExchangeTarget[],
    readonly label: string,
    readonly timing: ExchangeTiming,
    readonly spec: ExchangeSpec<T>,
    readonly resolve: (value: ExchangeResult<T>) => void,
    readonly reject: (err: unknown) => void,
    start: number,
  ) {
    this.#slots = targets.map((target, index) => ({
      index,
      target,
      label: formatHostPort(target.host, target.port),
      heard: false,
      refused: 0,
      refusedTry: 0,
      lastTry: 0,
      pending: [],
    }));
    this.#tries = Math.max(timing.tries, targets.length);
    this.#refusedLimit = Math.min(timing.refusedTries, Math.ceil(this.#tries / targets.length));
    this.#current = this.#slots[start % targets.length]!;
    this.#wait = timing.timeoutMs;
  }

  start(): void {
    const { deadline } = this.spec;
    if (deadline) {
      const text = `index ${this.label} did not finish sending ${deadline.what} within ${deadline.ms / 1000} s`;
      this.#deadline = setTimeout(() => this.#fail(new PeerdexError('ERR_TIMEOUT', text)), deadline.ms);
    }
    this.#attempt();
  }

  #attempt(): void {
    clearTimeout(this.#timer);
    if (this.#settled) return;
    let stay = false;
    if (this.#tryNo > 0 && this.spec.onTry?.() === true && this.#freeTries < MAX_FREE_TRIES) {
      this.#freeTries++;
      this.#tryNo--; // the last attempt made progress: it does not count against the tries
      stay = true;
    }
    if (this.#tryNo === this.#tries) {
      this.#fail(this.#lastRefusal ?? new PeerdexError('ERR_TIMEOUT', this.#silenceText()));
      return;
    }
    if (this.#tryNo > 0 && !stay) this.#current = this.#next(this.#current);
    this.#tryNo++;
    this.#sendTo(this.#current, this.#tryNo);
    this.#timer = setTimeout(() => this.#attempt(), this.#wait);
    this.#wait = Math.min(this.#wait * this.timing.backoff, this.timing.maxTimeoutMs);
  }

  #silenceText(): string {
    const tries = `${this.#tries} ${this.#tries === 1 ? 'try' : 'tries'}`;
    return this.#slots.length === 1 ? `index ${this.label} did not answer after ${tries}` : `none of the indexes ${this.label} answered after ${tries}`;
  }

  /** The index after `slot` in the list, skipping those whose host did not resolve. */
  #next(slot: Slot): Slot {
    for (let k = 1; k <= this.#slots.length; k++) {
      const candidate = this.#slots[(slot.index + k) % this.#slots.length];
      if (!candidate.failed) return candidate;
    }
    return slot;
  }

  #sendTo(slot: Slot, tryNo: number): void {
    slot.lastTry = tryNo;
    if (slot.socket) {
      slot.socket.send(this.spec.pdu, (err) => this.#onSocketError(slot, err));
      return;
    }
    slot.pending.push(tryNo);
    if (!slot.connecting) this.#connect(slot);
  }

  #connect(slot: Slot): void {
    slot.connecting = true;
    connectUdp(slot.target.host, slot.target.port).then(
      (socket) => {
        if (this.#settled) return void socket.close();
        slot.socket = socket;
        socket.on('error', (err) => this.#onSocketError(slot, err));
        socket.on('message', (msg) => this.#onMessage(slot, msg));
        for (const _ of slot.pending.splice(0)) socket.send(this.spec.pdu, (err) => this.#onSocketError(slot, err));
      },
      (err: PeerdexError) => {
        slot.failed = err;
        if (this.#slots.every((s) => s.failed)) this.#fail(this.#slots[0].failed);
        else if (slot === this.#current) this.#attempt(); // on to the next index at once
      },
    );
  }

  #onMessage(slot: Slot, msg: Buffer): void {
    slot.heard = true;
    let reply: IndexReply;
    try {
      reply = decodeIndexReply(msg);
    } catch {
      return; // garbage: keep waiting
    }
    let verdict: Verdict<T>;
    try {
      verdict = this.spec.onReply(reply, this.#tryNo, { index: slot.index, label: slot.label, current: slot === this.#current });
    } catch (err) {
      this.#fail(err);
      return;
    }
    if (verdict && 'done' in verdict) this.#settle(() => this.resolve({ value: verdict.done, index: slot.index }));
    else if (verdict && 'retry' in verdict) this.#lastRefusal = verdict.retry;
  }

  /** Other socket errors are treated as silence, then retried. */
  #onSocketError(slot: Slot, err: NodeJS.ErrnoException | null): void {
    if (err?.code === 'ECONNREFUSED') this.#onRefused(slot);
  }

  /**
   * ICMP port unreachable reaches a connected socket as ECONNREFUSED (an 'error' event, or a
   * failed send). Before an index has said anything, a few tries in a row refused mean
   * nothing listens there; when that is so of every index, the exchange ends. Once an index
   * has answered, a refusal is taken for a restart in progress and, like silence, left to the
   * timeouts. With several indexes, a refused try goes on to the next index at once when
   * that one has not refused yet.
   */
  #onRefused(slot: Slot): void {
    if (slot.heard || slot.refusedTry === slot.lastTry) return;
    slot.refusedTry = slot.lastTry;
    slot.refused++;
    const down = (s: Slot) => s.failed !== undefined || (!s.heard && s.refused >= this.#refusedLimit);
    if (this.#slots.every(down)) {
      const many = this.#slots.length > 1;
      this.#fail(new PeerdexError('ERR_CONNECTION', `nothing is listening on UDP ${this.label} (${many ? 'are the index servers' : 'is index-server'} running?)`));
      return;
    }
    const next = this.#next(slot);
    if (slot === this.#current && next !== slot && next.refused === 0 && this.#tryNo < this.#tries) this.#attempt();
  }

  #fail(err: unknown): void {
    this.#settle(() => this.reject(err));
  }

  #settle(report: () => void): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
    for (const slot of this.#slots) slot.socket?.close();
    report();
  }
}
