/**
 * What the index's HTTP surface reads from the registry beyond the live counters: how many
 * live registrations, names and servers there are (a census), and pages of names with their
 * holders, and the servers with how many names each holds.
 *
 * Every walk goes a slice of at most `SLICE_MS` per turn of the event loop, so `S` keeps
 * being answered in between (like the long O listings); and a census is taken again only
 * when the last one is older than `CENSUS_IDLE_FACTOR` times the work it took, so scraping
 * /metrics every second costs a huge registry at most about 1% of one core.
 */
import type { Holder } from '../protocol/index-messages.js';
import type { RegistryStore } from '../index/store.js';

export const SLICE_MS = 2;
const CENSUS_IDLE_FACTOR = 100;

export interface Census {
  registrations: number;
  names: number;
  servers: number;
}

/** Calls `visit` for each item, yielding the event loop every `SLICE_MS`; resolves to the ms of work. */
export async function walkInSlices<T>(items: Iterable<T>, visit: (item: T) => void): Promise<number> {
  const it = items[Symbol.iterator]();
  let busy = 0;
  for (;;) {
    const start = performance.now();
    for (let n = 1; ; n++) {
      const r = it.next();
      if (r.done) return busy + performance.now() - start;
      visit(r.value);
      if ((n & 63) === 0 && performance.now() - start >= SLICE_MS) break;
    }
    busy += performance.now() - start;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Counts live registrations, names and servers, taken again only as often as is cheap. */
export class RegistryCensus {
  readonly #store: RegistryStore;
  readonly #now: () => number;
  #last: Census | undefined;
  #running: Promise<Census> | undefined;
  #idleUntil = 0;

  constructor(store: RegistryStore, now: () => number = Date.now) {
    this.#store = store;
    this.#now = now;
  }

  /** A fresh census, or the last one while taking another would cost too much. */
  current(): Promise<Census> {
    if (this.#running) return this.#running;
    if (this.#last && performance.now() < this.#idleUntil) return Promise.resolve(this.#last);
    this.#running = this.#take().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #take(): Promise<Census> {
    const names = new Set<string>();
    const census: Census = { registrations: 0, names: 0, servers: 0 };
    const busy = await walkInSlices(this.#store.servers(this.#now()), (server) => {
      census.servers++;
      census.registrations += server.names.length;
      for (const name of server.names) names.add(name);
    });
    census.names = names.size;
    this.#idleUntil = performance.now() + busy * CENSUS_IDLE_FACTOR;
    this.#last = census;
    return census;
  }
}

export interface ContentPage {
  names: { name: string; holders: Pick<Holder, 'addr' | 'port' | 'sha256'>[] }[];
  /** Pass as `after` for the next page; absent on the last page. */
  next?: string;
}

/**
 * The first `limit` names (in code-unit order) after `after` that pass `test`, with their
 * live holders. Only `limit` names are held while walking, however big the registry.
 */
export async function contentPage(store: RegistryStore, test: (name: string) => boolean, after: string, limit: number, now: number): Promise<ContentPage> {
  const holders = new Map<string, ContentPage['names'][number]['holders']>();
  const kept: string[] = []; // sorted
  let more = false;
  await walkInSlices(store.entries(now), ({ holder }) => {
    const name = holder.filename;
    if (name <= after || !test(name)) return;
    let list = holders.get(name);
    if (!list) {
      if (kept.length === limit) {
        more = true;
        if (name > kept[limit - 1]) return;
        holders.delete(kept.pop()!);
      }
      kept.splice(insertionPoint(kept, name), 0, name);
      holders.set(name, (list = []));
    }
    list.push({ addr: holder.addr, port: holder.port, sha256: holder.sha256 });
  });
  const byServer = (a: Holder | { addr: string; port: number }, b: typeof a) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : a.port - b.port);
  const names = kept.map((name) => ({ name, holders: holders.get(name)!.sort(byServer) }));
  return more ? { names, next: kept.at(-1)! } : { names };
}

const insertionPoint = (sorted: string[], name: string): number => {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < name) lo = mid + 1;
    else hi = mid;
  }
  return lo;
};

export interface ServerCount {
  addr: string;
  port: number;
  names: number;
}

/** Every server with how many live names it holds, most first; `limit` of them from `offset`. */
export async function serverCounts(store: RegistryStore, offset: number, limit: number, now: number): Promise<{ total: number; servers: ServerCount[] }> {
  const all: ServerCount[] = [];
  await walkInSlices(store.servers(now), (s) => all.push({ addr: s.addr, port: s.port, names: s.names.length }));
  all.sort((a, b) => b.names - a.names || (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : a.port - b.port));
  return { total: all.length, servers: all.slice(offset, offset + limit) };
}
