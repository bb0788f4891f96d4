/**
 * A registry store shared by several index servers: an in-memory Registry that answers every
 * read, plus a RedisLink that sends its local changes to the others and applies theirs.
 * Loaded only by `index-server --redis` (dynamic import), so ioredis stays out otherwise.
 */
import type { Holder } from '../protocol/index-messages.js';
import { RedisLink, type RedisLinkOptions } from './redis-link.js';
import { Registry } from './registry.js';
import type { ChangeListener, RegistryLimits, RegistryStore, StoreChange, StoreEntry, ServerListing } from './store.js';

export interface ReplicatedStoreOptions extends Omit<RedisLinkOptions, 'store'> {
  ttlMs: number;
  limits?: Partial<RegistryLimits>;
}

export class ReplicatedStore implements RegistryStore {
  readonly #local: Registry;
  readonly #link: RedisLink;

  private constructor(local: Registry, link: RedisLink) {
    this.#local = local;
    this.#link = link;
  }

  /** Connects to Redis and loads every live registration before it resolves. */
  static async open(options: ReplicatedStoreOptions): Promise<ReplicatedStore> {
    const local = new Registry({ ttlMs: options.ttlMs, rememberRemovals: true, ...options.limits });
    const link = new RedisLink({ ...options, store: local });
    await link.start();
    return new ReplicatedStore(local, link);
  }

  /** Sends what is queued and disconnects from Redis. */
  close(): Promise<void> {
    return this.#link.close();
  }

  /** Local changes not yet written to Redis. */
  get pending(): number {
    return this.#link.pending;
  }

  get size(): number {
    return this.#local.size;
  }

  get ttlMs(): number {
    return this.#local.ttlMs;
  }

  register(h: Holder, from: string, now: number, refreshOnly?: boolean) {
    return this.#local.register(h, from, now, refreshOnly);
  }

  deregister(h: Holder, from: string, now: number) {
    return this.#local.deregister(h, from, now);
  }

  nextHolder(filename: string, now: number): Holder | undefined {
    return this.#local.nextHolder(filename, now);
  }

  leave(from: string): Holder[] {
    return this.#local.leave(from);
  }

  expire(now: number, onExpired?: (h: Holder) => void): number {
    return this.#local.expire(now, onExpired);
  }

  servers(now: number): Iterable<ServerListing> {
    return this.#local.servers(now);
  }

  countServers(now: number, chunk: number): Generator<void, number> {
    return this.#local.countServers(now, chunk);
  }

  hasSource(from: string): boolean {
    return this.#local.hasSource(from);
  }

  entries(now: number): Iterable<StoreEntry> {
    return this.#local.entries(now);
  }

  apply(change: StoreChange): void {
    this.#local.apply(change);
  }

  onChange(listener: ChangeListener): () => void {
    return this.#local.onChange(listener);
  }
}
