/**
 * Where a download's holders come from: the index's S answers. One S names one holder, the
 * next in the index's round robin, so a round of searches goes on until a holder comes back
 * (the round robin has gone round) or the bound is reached. This peer's own content server is
 * never a holder to download from.
 */
import { networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { isPeerdexError } from '../../protocol/errors.js';
import { formatHostPort } from '../../protocol/fields.js';
import type { Holder } from '../../protocol/index-messages.js';
import type { IndexClient } from '../index-client.js';

/** Searches in one round at most: enough for the holders a swarm download can use at once. */
export const MAX_SEARCHES_PER_ROUND = 24;

export const holderKey = (h: Pick<Holder, 'addr' | 'port'>): string => formatHostPort(h.addr, h.port);

/** Whether `addr` is one of this machine's addresses (loopback included). */
export function isLocalAddress(addr: string): boolean {
  const a = addr.toLowerCase().replace(/^::ffff:(?=\d+\.)/, '');
  if (a === '::1' || a === '0.0.0.0' || a === '::' || (isIP(a) === 4 && a.startsWith('127.'))) return true;
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address.toLowerCase() === a));
}

export interface HolderSourceOptions {
  index: IndexClient;
  filename: string;
  /** This peer's own content port: holders on a local address with this port are skipped. */
  selfPort?: number | undefined;
}

export class HolderSource {
  readonly #o: HolderSourceOptions;

  constructor(options: HolderSourceOptions) {
    this.#o = options;
  }

  isSelf(h: Pick<Holder, 'addr' | 'port'>): boolean {
    return this.#o.selfPort !== undefined && h.port === this.#o.selfPort && isLocalAddress(h.addr);
  }

  /**
   * One round of searches: every holder the index hands out before one repeats, this peer's
   * own server left out. Empty when the index knows no holder; rejects when it does not answer.
   */
  async round(): Promise<Holder[]> {
    const seen = new Map<string, Holder>();
    for (let i = 0; i < MAX_SEARCHES_PER_ROUND; i++) {
      let h: Holder;
      try {
        h = await this.#o.index.search(this.#o.filename);
      } catch (err) {
        if (isPeerdexError(err) && err.code === 'ERR_NOT_FOUND') break;
        throw err;
      }
      const key = holderKey(h);
      if (seen.has(key)) break;
      seen.set(key, h);
    }
    return [...seen.values()].filter((h) => !this.isSelf(h));
  }
}
