/**
 * The RegistryStore contract (src/index/store.ts), run by one test file per implementation.
 * `make` builds a fresh, empty store; `close` (optional) releases what it holds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Holder } from '../../src/protocol/index-messages.js';
import type { RegistryLimits, RegistryStore, StoreChange } from '../../src/index/store.js';

export interface StoreFactory {
  make(options: { ttlMs: number } & Partial<RegistryLimits>): Promise<RegistryStore>;
  close?(store: RegistryStore): Promise<void>;
}

const TTL = 1000;
const SHA = 'n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg';
const h = (filename: string, addr = '10.0.0.1', port = 9100, sha256?: string): Holder => ({ port, addr, filename, sha256 });

export function describeStoreContract(name: string, factory: StoreFactory): void {
  const open: RegistryStore[] = [];
  const make = async (options: Partial<RegistryLimits> & { ttlMs?: number } = {}) => {
    const store = await factory.make({ ttlMs: TTL, ...options });
    open.push(store);
    return store;
  };
  const record = (store: RegistryStore) => {
    const seen: StoreChange[] = [];
    store.onChange((c) => seen.push(c));
    return seen;
  };

  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => factory.close?.(s) ?? Promise.resolve()));
  });

  describe(`RegistryStore contract: ${name}`, () => {
    it('adds, refreshes (R is idempotent), hands out holders in turn and keeps digests', async () => {
      const s = await make();
      expect(s.register(h('a', '10.0.0.1', 9100, SHA), '10.0.0.1', 0)).toBe('added');
      expect(s.register(h('a'), '10.0.0.1', 10)).toBe('refreshed');
      expect(s.register(h('a', '10.0.0.2'), '10.0.0.2', 10)).toBe('added');
      expect(s.size).toBe(2);
      expect(s.ttlMs).toBe(TTL);
      const got = [s.nextHolder('a', 20)!, s.nextHolder('a', 20)!, s.nextHolder('a', 20)!];
      expect(new Set(got.slice(0, 2).map((x) => x.addr)).size).toBe(2);
      expect(got[2]).toEqual(got[0]);
      expect(got.find((x) => x.addr === '10.0.0.1')!.sha256).toBe(SHA);
      expect(s.nextHolder('missing', 20)).toBeUndefined();
    });

    it('removes with T only from the registering address, and E 1 only that source', async () => {
      const s = await make();
      s.register(h('a'), '10.0.0.1', 0);
      s.register(h('b'), '10.0.0.1', 0);
      s.register(h('c', '10.0.0.2'), '10.0.0.2', 0);
      expect(s.deregister(h('a'), '10.0.0.9', 1)).toBe('forbidden');
      expect(s.deregister(h('zz'), '10.0.0.1', 1)).toBe('missing');
      expect(s.deregister(h('a'), '10.0.0.1', 1)).toBe('removed');
      expect(s.nextHolder('a', 1)).toBeUndefined();
      expect(s.hasSource('10.0.0.1')).toBe(true);
      expect(s.leave('10.0.0.1').map((x) => x.filename)).toEqual(['b']);
      expect(s.hasSource('10.0.0.1')).toBe(false);
      expect(s.nextHolder('c', 1)?.addr).toBe('10.0.0.2');
    });

    it('drops registrations past their TTL, in lookups at once and in the sweep', async () => {
      const s = await make();
      s.register(h('a'), '10.0.0.1', 0);
      s.register(h('b'), '10.0.0.1', 500);
      expect(s.nextHolder('a', TTL)).toBeUndefined();
      const expired: string[] = [];
      expect(s.expire(TTL + 500, (x) => expired.push(x.filename))).toBe(1);
      expect(expired).toEqual(['b']);
      expect(s.size).toBe(0);
    });

    it('lists servers and live entries with their absolute expiry', async () => {
      const s = await make();
      s.register(h('a'), '10.0.0.1', 0);
      s.register(h('b'), '10.0.0.1', 100);
      s.register(h('a', '10.0.0.2', 1), '10.0.0.2', 0);
      expect([...s.servers(10)]).toEqual([
        { addr: '10.0.0.1', port: 9100, names: ['a', 'b'] },
        { addr: '10.0.0.2', port: 1, names: ['a'] },
      ]);
      const entries = [...s.entries(TTL)].map((e) => [e.holder.filename, e.from, e.expiresAt]);
      expect(entries).toEqual([['b', '10.0.0.1', 100 + TTL]]);
    });

    it('refuses new registrations beyond the caps, never a refresh', async () => {
      const s = await make({ maxRegistrations: 3, maxPerSource: 2 });
      expect(s.register(h('a'), '10.0.0.1', 0)).toBe('added');
      expect(s.register(h('b'), '10.0.0.1', 0)).toBe('added');
      expect(s.register(h('c'), '10.0.0.1', 0)).toBe('source-full');
      expect(s.register(h('c', '10.0.0.2'), '10.0.0.2', 0)).toBe('added');
      expect(s.register(h('d', '10.0.0.3'), '10.0.0.3', 0)).toBe('full');
      expect(s.register(h('a'), '10.0.0.1', 1)).toBe('refreshed');
    });

    it('caps each /24 (IPv4) and /64 (IPv6); a freed registration makes room again', async () => {
      const s = await make({ maxPerPrefix: 3 });
      expect(s.register(h('a', '10.0.0.1'), '10.0.0.1', 0)).toBe('added');
      expect(s.register(h('b', '10.0.0.2'), '10.0.0.2', 0)).toBe('added');
      expect(s.register(h('c', '10.0.0.3'), '10.0.0.3', 0)).toBe('added');
      expect(s.register(h('d', '10.0.0.4'), '10.0.0.4', 0)).toBe('prefix-full');
      expect(s.register(h('a', '10.0.0.1'), '10.0.0.1', 1)).toBe('refreshed');
      expect(s.register(h('d', '10.0.1.4'), '10.0.1.4', 0)).toBe('added'); // another /24
      expect(s.deregister(h('b', '10.0.0.2'), '10.0.0.2', 1)).toBe('removed');
      expect(s.register(h('d', '10.0.0.4'), '10.0.0.4', 1)).toBe('added');
      s.leave('10.0.0.4');
      expect(s.register(h('e', '10.0.0.5'), '10.0.0.5', 1)).toBe('added');
      for (const [i, addr] of ['2001:db8::1', '2001:db8::2', '2001:db8:0:0:ffff::3'].entries()) expect(s.register(h(`v${i}`, addr), addr, 0)).toBe('added');
      expect(s.register(h('v9', '2001:db8::9'), '2001:db8::9', 0)).toBe('prefix-full');
      expect(s.register(h('v9', '2001:db8:0:1::9'), '2001:db8:0:1::9', 0)).toBe('added');
      // Expiry frees the prefix's share too (once swept, like every cap).
      expect(s.register(h('f', '10.0.0.6'), '10.0.0.6', TTL + 10)).toBe('prefix-full');
      s.expire(TTL + 10);
      expect(s.register(h('f', '10.0.0.6'), '10.0.0.6', TTL + 10)).toBe('added');
    });

    it('with refreshOnly refreshes what is held and adds nothing', async () => {
      const s = await make();
      s.register(h('a'), '10.0.0.1', 0);
      expect(s.register(h('a'), '10.0.0.1', 5, true)).toBe('refreshed');
      expect(s.register(h('b'), '10.0.0.1', 5, true)).toBe('rate-limited');
      expect(s.size).toBe(1);
    });

    it('counts the servers it lists, a chunk at a time', async () => {
      const s = await make();
      for (let i = 0; i < 10; i++) s.register(h('a', `10.0.${i}.1`), `10.0.${i}.1`, i < 3 ? 0 : 500);
      const counter = s.countServers(TTL + 100, 4);
      let steps = 0;
      let step = counter.next();
      for (; !step.done; step = counter.next()) steps++;
      expect(step.value).toBe(7);
      expect(steps).toBe(2);
      expect(step.value).toBe([...s.servers(TTL + 100)].length);
    });

    it('emits one change per holder for every change, and none for reads', async () => {
      const s = await make();
      const seen = record(s);
      s.register(h('a', '10.0.0.1', 9100, SHA), '10.0.0.1', 0);
      s.register(h('a'), '10.0.0.1', 10);
      s.nextHolder('a', 20);
      void [...s.servers(20)]; // a listing must not change what the store holds
      s.register(h('b'), '10.0.0.1', 20);
      s.register(h('c'), '10.0.0.1', 20);
      s.deregister(h('b'), '10.0.0.1', 30);
      s.register(h('d', '10.0.0.2'), '10.0.0.2', 30);
      s.leave('10.0.0.1');
      s.expire(30 + TTL);
      const summary = seen.map((c) => `${c.kind} ${c.holder.filename} ${c.from} ${c.expiresAt} ${c.origin}`);
      expect(summary).toEqual([
        `added a 10.0.0.1 ${TTL} local`,
        `refreshed a 10.0.0.1 ${10 + TTL} local`,
        `added b 10.0.0.1 ${20 + TTL} local`,
        `added c 10.0.0.1 ${20 + TTL} local`,
        `removed b 10.0.0.1 ${20 + TTL} local`,
        `added d 10.0.0.2 ${30 + TTL} local`,
        ...['c', 'a'].map((f) => `left ${f} 10.0.0.1 ${f === 'a' ? 10 + TTL : 20 + TTL} local`),
        `expired d 10.0.0.2 ${30 + TTL} local`,
      ]);
      expect(seen[1].holder.sha256).toBe(SHA); // a refresh without a digest carries the kept one
    });

    it('stops emitting once unsubscribed', async () => {
      const s = await make();
      const seen: StoreChange[] = [];
      const stop = s.onChange((c) => seen.push(c));
      s.register(h('a'), '10.0.0.1', 0);
      stop();
      s.register(h('b'), '10.0.0.1', 0);
      expect(seen.map((c) => c.holder.filename)).toEqual(['a']);
    });

    it('applies replicated changes with their absolute expiry, keeping a later one', async () => {
      const s = await make({ maxRegistrations: 1 });
      const seen = record(s);
      const change = (kind: StoreChange['kind'], filename: string, expiresAt: number, from = '10.0.0.1'): StoreChange => ({
        kind,
        holder: h(filename, from, 9100, SHA),
        from,
        expiresAt,
        origin: 'replicated',
      });
      s.register(h('mine'), '10.0.0.1', 0);
      s.apply(change('added', 'a', 5000)); // caps never refuse a replicated change
      expect(s.size).toBe(2);
      expect(s.nextHolder('a', 4999)?.sha256).toBe(SHA);
      s.apply(change('refreshed', 'a', 3000)); // older than what is held: ignored
      s.apply(change('refreshed', 'mine', 7000));
      expect([...s.entries(0)].map((e) => `${e.holder.filename} ${e.expiresAt}`).sort()).toEqual(['a 5000', 'mine 7000']);
      s.apply(change('removed', 'a', 5000, '10.0.0.2')); // another source's T: not this one
      s.apply(change('expired', 'mine', 6000)); // refreshed since: stays
      expect(s.size).toBe(2);
      s.apply(change('left', 'a', 5000, '10.0.0.1'));
      expect(s.size).toBe(1);
      expect(seen.map((c) => `${c.kind} ${c.holder.filename} ${c.origin}`)).toEqual(['added mine local', 'added a replicated', 'refreshed mine replicated', 'left a replicated']);
    });
  });
}
