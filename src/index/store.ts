/**
 * The registry store seam: what the handler and the UDP server need of a registry, and the
 * change feed that replication follows. Implementations: `Registry` (in memory) and
 * `ReplicatedStore` (a Registry whose changes travel through Redis). The written contract is
 * test/index/store-contract.ts, run against each of them.
 *
 * Contract in short:
 * - `register`, `deregister`, `nextHolder`, `leave`, `expire`, `servers`, `hasSource` behave as
 *   PROTOCOL.md says (R idempotent, T only from the registering address, round robin, TTL).
 * - Every change of the registered set comes out of `onChange` as one `StoreChange` per
 *   holder: added, refreshed, removed (T), expired (TTL passed), left (E 1); with the source
 *   address, the absolute expiry time (ms since the epoch) and the origin. Nothing else does:
 *   searches and listings never emit, and nothing is built while nobody listens.
 * - `apply` takes a change made elsewhere (origin 'replicated'): added/refreshed set the
 *   registration with the given expiry (a later expiry already held is kept), the others
 *   remove it. Caps do not refuse replicated changes: every index must hold the same set.
 */
import type { Holder } from '../protocol/index-messages.js';

export type RegisterOutcome = 'added' | 'refreshed' | 'full' | 'source-full' | 'prefix-full' | 'rate-limited';
export type DeregisterOutcome = 'removed' | 'missing' | 'forbidden';
export type ChangeKind = 'added' | 'refreshed' | 'removed' | 'expired' | 'left';
export type ChangeOrigin = 'local' | 'replicated';

export interface StoreChange {
  kind: ChangeKind;
  holder: Holder;
  /** The source address the registration was made from. */
  from: string;
  /** Absolute expiry, ms since the epoch (for removals: the expiry it had). */
  expiresAt: number;
  origin: ChangeOrigin;
}

/** One live registration, as `entries` lists them for loading and writing back. */
export type StoreEntry = Pick<StoreChange, 'holder' | 'from' | 'expiresAt'>;

export type ChangeListener = (change: StoreChange) => void;

export interface ServerListing {
  addr: string;
  port: number;
  names: string[];
}

export interface RegistryLimits {
  /** Most live registrations in all (E 6 beyond it). */
  maxRegistrations: number;
  /** Most live registrations made from one source address (E 6 beyond it). */
  maxPerSource: number;
  /** Most live registrations made from the addresses of one /24 (IPv4) or /64 (IPv6). */
  maxPerPrefix: number;
}

export interface RegistryStore {
  /** Live and not yet swept registrations. */
  readonly size: number;
  readonly ttlMs: number;
  /**
   * Adds a registration or refreshes it (R is idempotent). `from` is the datagram's source.
   * With `refreshOnly` nothing new is added ('rate-limited'); a refresh still is one.
   */
  register(h: Holder, from: string, now: number, refreshOnly?: boolean): RegisterOutcome;
  /** Removes a registration, if it is live and was made from `from`. */
  deregister(h: Holder, from: string, now: number): DeregisterOutcome;
  /** The next live holder of `filename` in round-robin order, or undefined. */
  nextHolder(filename: string, now: number): Holder | undefined;
  /** Drops every registration made from `from` ("I am leaving"); returns them. */
  leave(from: string): Holder[];
  /** Removes registrations whose TTL has passed; calls `onExpired` for each. */
  expire(now: number, onExpired?: (h: Holder) => void): number;
  /** Live registrations grouped by server, in the order the servers first registered. */
  servers(now: number): Iterable<ServerListing>;
  /**
   * Counts the servers that `servers(now)` would list, yielding after every `chunk` servers
   * looked at, so that a caller can spread the count of a huge registry over several turns.
   */
  countServers(now: number, chunk: number): Generator<void, number>;
  /** Whether any live registration was made from `from` (the address has proven itself). */
  hasSource(from: string): boolean;
  /** Every live registration at `now`. */
  entries(now: number): Iterable<StoreEntry>;
  /** Applies a change made at another index (see the contract above). */
  apply(change: StoreChange): void;
  /** Subscribes to changes; returns the function that unsubscribes. */
  onChange(listener: ChangeListener): () => void;
}

/** The listeners of one store; `active` is a plain field so the hot path tests it cheaply. */
export class ChangeFeed {
  #listeners: ChangeListener[] = [];
  active = false;

  subscribe(listener: ChangeListener): () => void {
    this.#listeners = [...this.#listeners, listener];
    this.active = true;
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
      this.active = this.#listeners.length > 0;
    };
  }

  emit(change: StoreChange): void {
    for (const listener of this.#listeners) listener(change);
  }
}
