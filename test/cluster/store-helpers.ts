/**
 * Replicated stores opened in this process (no UDP), a plain Redis client to look at what the
 * registry holds in Redis, a bulk registration helper, and a cuttable proxy in front of Redis.
 * `closeStores()` closes the stores and clients.
 */
import { Redis } from 'ioredis';
import { ReplicatedStore } from '../../src/index/replicated-store.js';
import type { Holder } from '../../src/protocol/index-messages.js';
import { eventually } from './cluster-helpers.js';
import { TcpProxy } from './tcp-proxy.js';

export interface OpenStore {
  store: ReplicatedStore;
  statuses: string[];
}

const closers: (() => Promise<unknown>)[] = [];
const NO_CAPS = { maxRegistrations: 1_000_000, maxPerSource: 1_000_000, maxPerPrefix: 1_000_000 };

export async function openStore(url: string, prefix: string): Promise<OpenStore> {
  const statuses: string[] = [];
  const store = await ReplicatedStore.open({ url, prefix, ttlMs: 600_000, limits: NO_CAPS, onStatus: (s) => statuses.push(s.message) });
  closers.push(() => store.close());
  return { store, statuses };
}

export async function redisClient(url: string): Promise<Redis> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  closers.push(() => Promise.resolve(client.disconnect()));
  return client;
}

export const holder = (filename: string, addr = '10.1.0.1'): Holder => ({ port: 9100, addr, filename });

/** Registers `count` names `${stem}${i}` from 10.1.0.1, all in this turn of the event loop. */
export function registerMany(store: ReplicatedStore, stem: string, count: number, now = Date.now()): void {
  for (let i = 0; i < count; i++) {
    const outcome = store.register(holder(`${stem}${i}`), '10.1.0.1', now);
    if (outcome !== 'added') throw new Error(`${stem}${i}: ${outcome}`);
  }
}

/** `eventually` with room for a loaded machine. */
export const until = (probe: () => boolean | Promise<boolean>, timeoutMs = 20_000) => eventually(probe, timeoutMs);

/** Runs `body` with a cuttable proxy in front of Redis; closes the stores, then the proxy. */
export async function withProxy(redisPort: number, body: (proxy: TcpProxy) => Promise<void>): Promise<void> {
  const proxy = await TcpProxy.open(redisPort);
  try {
    await body(proxy);
  } finally {
    await closeStores();
    await proxy.close();
  }
}

export async function closeStores(): Promise<void> {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
}
