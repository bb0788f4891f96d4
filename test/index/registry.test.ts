import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { Registry } from '../../src/index/registry.js';
import type { Holder } from '../../src/protocol/index-messages.js';

const TTL = 1000;
const sha = (text: string) => createHash('sha256').update(text).digest('base64url');
const h = (filename: string, addr = '10.0.0.1', port = 9100, sha256?: string): Holder => ({ port, addr, filename, sha256 });
const listing = (r: Registry, now: number) => [...r.servers(now)];

describe('Registry: register, refresh, search', () => {
  it('adds once and refreshes after that (R is idempotent)', () => {
    const r = new Registry({ ttlMs: TTL });
    expect(r.register(h('a'), '10.0.0.1', 0)).toBe('added');
    expect(r.register(h('a'), '10.0.0.1', 10)).toBe('refreshed');
    expect(r.size).toBe(1);
    expect(r.nextHolder('a', 20)).toEqual(h('a'));
    expect(r.ttlMs).toBe(TTL);
  });

  it('tells registrations apart by addr, port and filename', () => {
    const r = new Registry({ ttlMs: TTL });
    expect(r.register(h('a', '10.0.0.1', 1), '10.0.0.1', 0)).toBe('added');
    expect(r.register(h('a', '10.0.0.1', 2), '10.0.0.1', 0)).toBe('added');
    expect(r.register(h('a', '10.0.0.2', 1), '10.0.0.2', 0)).toBe('added');
    expect(r.register(h('b', '10.0.0.1', 1), '10.0.0.1', 0)).toBe('added');
    expect(r.register(h('A', '10.0.0.1', 1), '10.0.0.1', 0)).toBe('added'); // case-sensitive
    expect(r.size).toBe(5);
  });

  it('sets the digest with an R that has one and keeps it with an R that has none', () => {
    const r = new Registry({ ttlMs: TTL });
    r.register(h('a'), '10.0.0.1', 0);
    expect(r.nextHolder('a', 0)?.sha256).toBeUndefined();
    r.register(h('a', '10.0.0.1', 9100, sha('one')), '10.0.0.1', 1);
    expect(r.nextHolder('a', 1)?.sha256).toBe(sha('one'));
    r.register(h('a'), '10.0.0.1', 2);
    expect(r.nextHolder('a', 2)?.sha256).toBe(sha('one'));
    r.register(h('a', '10.0.0.1', 9100, sha('two')), '10.0.0.1', 3);
    expect(r.nextHolder('a', 3)?.sha256).toBe(sha('two'));
  });

  it('keeps each holder its own digest', () => {
    const r = new Registry({ ttlMs: TTL });
    r.register(h('a', '10.0.0.1', 1, sha('x')), '10.0.0.1', 0);
    r.register(h('a', '10.0.0.2', 1), '10.0.0.2', 0);
    const seen = new Map([r.nextHolder('a', 0)!, r.nextHolder('a', 0)!].map((x) => [x.addr, x.sha256]));
    expect(seen).toEqual(
      new Map([
        ['10.0.0.1', sha('x')],
        ['10.0.0.2', undefined],
      ]),
    );
  });

  it('hands out the holders of a name in turn (round robin)', () => {
    const r = new Registry({ ttlMs: TTL });
    for (const addr of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) r.register(h('a', addr), addr, 0);
    r.register(h('other', '10.0.0.9'), '10.0.0.9', 0);
    const got = Array.from({ length: 9 }, () => r.nextHolder('a', 1)!.addr);
    expect(new Set(got.slice(0, 3)).size).toBe(3);
    expect(got.slice(3, 6)).toEqual(got.slice(0, 3));
    expect(got.slice(6, 9)).toEqual(got.slice(0, 3));
    expect(r.nextHolder('missing', 1)).toBeUndefined();
  });

  it('keeps the turn fair while holders come and go', () => {
    const r = new Registry({ ttlMs: TTL });
    for (const addr of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) r.register(h('a', addr), addr, 0);
    const first = r.nextHolder('a', 0)!.addr;
    const second = r.nextHolder('a', 0)!.addr;
    // Removing the holder that is next in turn moves the turn on.
    const third = ['10.0.0.1', '10.0.0.2', '10.0.0.3'].find((a) => a !== first && a !== second)!;
    expect(r.deregister(h('a', third), third, 0)).toBe('removed');
    r.register(h('a', '10.0.0.4'), '10.0.0.4', 0);
    const round = Array.from({ length: 3 }, () => r.nextHolder('a', 0)!.addr);
    expect(new Set(round)).toEqual(new Set([first, second, '10.0.0.4']));
  });
});

describe('Registry: deregister and leave', () => {
  it('removes a registration only for the source that made it', () => {
    const r = new Registry({ ttlMs: TTL });
    r.register(h('a'), '10.0.0.1', 0);
    expect(r.deregister(h('b'), '10.0.0.1', 0)).toBe('missing');
    expect(r.deregister(h('a', '10.0.0.1', 1), '10.0.0.1', 0)).toBe('missing');
    expect(r.deregister(h('a'), '10.0.0.2', 0)).toBe('forbidden');
    expect(r.nextHolder('a', 0)).toEqual(h('a'));
    expect(r.deregister(h('a'), '10.0.0.1', 0)).toBe('removed');
    expect(r.nextHolder('a', 0)).toBeUndefined();
    expect(r.deregister(h('a'), '10.0.0.1', 0)).toBe('missing');
    expect(r.size).toBe(0);
  });

  it('says missing before forbidden', () => {
    const r = new Registry({ ttlMs: TTL });
    expect(r.deregister(h('a'), '10.0.0.2', 0)).toBe('missing');
  });

  it('drops every registration from a leaving source and nothing else', () => {
    const r = new Registry({ ttlMs: TTL });
    for (const name of ['a', 'b', 'c']) r.register(h(name, '10.0.0.1'), '10.0.0.1', 0);
    r.register(h('a', '10.0.0.1', 9200), '10.0.0.1', 0);
    r.register(h('a', '10.0.0.2'), '10.0.0.2', 0);
    // A registration claimed for 10.0.0.3 (trusted index) belongs to its source.
    r.register(h('d', '10.0.0.3'), '10.0.0.1', 0);
    const left = r.leave('10.0.0.1');
    expect(left.map((x) => `${x.filename}@${x.addr}:${x.port}`).sort()).toEqual(['a@10.0.0.1:9100', 'a@10.0.0.1:9200', 'b@10.0.0.1:9100', 'c@10.0.0.1:9100', 'd@10.0.0.3:9100']);
    expect(r.size).toBe(1);
    expect(r.nextHolder('a', 0)?.addr).toBe('10.0.0.2');
    expect(r.hasSource('10.0.0.1')).toBe(false);
    expect(r.hasSource('10.0.0.2')).toBe(true);
    expect(r.leave('10.0.0.1')).toEqual([]);
    expect(r.leave('10.9.9.9')).toEqual([]);
  });
});

describe('Registry: TTL', () => {
  it('hides a registration once its TTL has passed and reclaims it on expire()', () => {
    const r = new Registry({ ttlMs: TTL });
    r.register(h('a'), '10.0.0.1', 0);
    r.register(h('b'), '10.0.0.1', 500);
    expect(r.nextHolder('a', TTL - 1)).toEqual(h('a'));
    expect(listing(r, TTL - 1)[0].names).toEqual(['a', 'b']);
    expect(listing(r, TTL)[0].names).toEqual(['b']);
    expect(r.deregister(h('a'), '10.0.0.1', TTL)).toBe('missing');
    const expired: Holder[] = [];
    expect(r.expire(TTL, (x) => expired.push(x))).toBe(1);
    expect(expired).toEqual([h('a')]);
    expect(r.size).toBe(1);
    expect(r.expire(TTL + 499)).toBe(0);
    expect(r.expire(TTL + 500)).toBe(1);
    expect(r.size).toBe(0);
    expect(listing(r, TTL + 500)).toEqual([]);
  });

  it('search skips and drops expired holders', () => {
    const r = new Registry({ ttlMs: TTL });
    r.register(h('a', '10.0.0.1'), '10.0.0.1', 0);
    r.register(h('a', '10.0.0.2'), '10.0.0.2', 600);
    expect(r.nextHolder('a', 1200)?.addr).toBe('10.0.0.2');
    expect(r.nextHolder('a', 1200)?.addr).toBe('10.0.0.2');
    expect(r.size).toBe(1);
    expect(r.nextHolder('a', 1600)).toBeUndefined();
    expect(r.size).toBe(0);
  });

  it('a refresh extends the TTL', () => {
    const r = new Registry({ ttlMs: TTL });
    r.register(h('a'), '10.0.0.1', 0);
    r.register(h('a'), '10.0.0.1', 900);
    expect(r.nextHolder('a', 1800)).toBeDefined();
    expect(r.expire(1899)).toBe(0);
    expect(r.expire(1900)).toBe(1);
  });

  it('an R after the TTL starts a new registration: no stale digest, the new source', () => {
    const r = new Registry({ ttlMs: TTL });
    r.register(h('a', '10.0.0.1', 9100, sha('old')), '10.0.0.1', 0);
    expect(r.register(h('a'), '10.0.0.1', TTL)).toBe('added');
    expect(r.nextHolder('a', TTL)).toEqual(h('a'));
    // The same with a claimed address: the source of the new registration counts.
    r.register(h('b', '10.0.0.5'), '10.0.0.6', 0);
    expect(r.register(h('b', '10.0.0.5'), '10.0.0.7', 5 * TTL)).toBe('added');
    expect(r.deregister(h('b', '10.0.0.5'), '10.0.0.6', 5 * TTL)).toBe('forbidden');
    expect(r.deregister(h('b', '10.0.0.5'), '10.0.0.7', 5 * TTL)).toBe('removed');
  });
});

describe('Registry: limits', () => {
  it('refuses new registrations beyond maxRegistrations but still refreshes', () => {
    const r = new Registry({ ttlMs: TTL, maxRegistrations: 2 });
    expect(r.register(h('a'), '10.0.0.1', 0)).toBe('added');
    expect(r.register(h('b'), '10.0.0.2', 0)).toBe('added');
    expect(r.register(h('c'), '10.0.0.3', 0)).toBe('full');
    expect(r.register(h('a'), '10.0.0.1', 0)).toBe('refreshed');
    expect(r.size).toBe(2);
    r.deregister(h('a'), '10.0.0.1', 0);
    expect(r.register(h('c'), '10.0.0.3', 0)).toBe('added');
  });

  it('refuses new registrations beyond maxPerSource for that source only', () => {
    const r = new Registry({ ttlMs: TTL, maxPerSource: 2 });
    expect(r.register(h('a'), '10.0.0.1', 0)).toBe('added');
    expect(r.register(h('b'), '10.0.0.1', 0)).toBe('added');
    expect(r.register(h('c'), '10.0.0.1', 0)).toBe('source-full');
    expect(r.register(h('b'), '10.0.0.1', 0)).toBe('refreshed');
    expect(r.register(h('c', '10.0.0.2'), '10.0.0.2', 0)).toBe('added');
    r.leave('10.0.0.1');
    expect(r.register(h('c'), '10.0.0.1', 0)).toBe('added');
  });
});

describe('Registry: listing', () => {
  it('groups live names by server, servers in first-registration order, names in registration order', () => {
    const r = new Registry({ ttlMs: TTL });
    r.register(h('x', '10.0.0.2', 1), '10.0.0.2', 0);
    r.register(h('a', '10.0.0.1', 1), '10.0.0.1', 0);
    r.register(h('y', '10.0.0.2', 1), '10.0.0.2', 0);
    r.register(h('b', '10.0.0.1', 2), '10.0.0.1', 0);
    r.register(h('x', '10.0.0.2', 1), '10.0.0.2', 5); // a refresh does not reorder
    expect(listing(r, 10)).toEqual([
      { addr: '10.0.0.2', port: 1, names: ['x', 'y'] },
      { addr: '10.0.0.1', port: 1, names: ['a'] },
      { addr: '10.0.0.1', port: 2, names: ['b'] },
    ]);
  });

  it('leaves out servers whose names have all expired', () => {
    const r = new Registry({ ttlMs: TTL });
    r.register(h('a', '10.0.0.1'), '10.0.0.1', 0);
    r.register(h('b', '10.0.0.2'), '10.0.0.2', 500);
    expect(listing(r, TTL).map((s) => s.addr)).toEqual(['10.0.0.2']);
  });
});

// ---- model-based: the registry against a plain Map ------------------------------------------

interface ModelEntry {
  source: string;
  expiresAt: number;
  sha256: string | undefined;
}

type Op =
  | { op: 'register'; name: string; addr: string; port: number; source: string; sha: string | undefined }
  | { op: 'deregister'; name: string; addr: string; port: number; source: string }
  | { op: 'search'; name: string }
  | { op: 'leave'; source: string }
  | { op: 'expire' }
  | { op: 'tick'; ms: number };

const NAMES = ['a', 'b', 'c', 'd', 'n'.repeat(25), 'é'.repeat(12)];
const ADDRS = ['10.0.0.1', '10.0.0.2', '::1'];
const PORTS = [1, 2, 65535];
const SOURCES = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];
const DIGESTS = [undefined, sha('1'), sha('2')];

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('register' as const),
      name: fc.constantFrom(...NAMES),
      addr: fc.constantFrom(...ADDRS),
      port: fc.constantFrom(...PORTS),
      source: fc.constantFrom(...SOURCES),
      sha: fc.constantFrom(...DIGESTS),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('deregister' as const),
      name: fc.constantFrom(...NAMES),
      addr: fc.constantFrom(...ADDRS),
      port: fc.constantFrom(...PORTS),
      source: fc.constantFrom(...SOURCES),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('search' as const), name: fc.constantFrom(...NAMES) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('leave' as const), source: fc.constantFrom(...SOURCES) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('expire' as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 600 }) }) },
);

const keyOf = (addr: string, port: number, name: string) => `${addr}|${port}|${name}`;

/** Runs ops against a Registry and a Map model, comparing every answer and the listing. */
function runModel(ops: Op[]): void {
  const r = new Registry({ ttlMs: TTL });
  const model = new Map<string, ModelEntry>();
  let now = 0;
  const live = () => [...model].filter(([, e]) => e.expiresAt > now);
  for (const op of ops) {
    switch (op.op) {
      case 'register': {
        const k = keyOf(op.addr, op.port, op.name);
        const old = model.get(k);
        const outcome = r.register(h(op.name, op.addr, op.port, op.sha), op.source, now);
        if (old && old.expiresAt > now) {
          expect(outcome).toBe('refreshed');
          model.set(k, { source: old.source, expiresAt: now + TTL, sha256: op.sha ?? old.sha256 });
        } else {
          expect(outcome).toBe('added');
          model.set(k, { source: op.source, expiresAt: now + TTL, sha256: op.sha });
        }
        break;
      }
      case 'deregister': {
        const k = keyOf(op.addr, op.port, op.name);
        const e = model.get(k);
        const outcome = r.deregister(h(op.name, op.addr, op.port), op.source, now);
        const want = !e || e.expiresAt <= now ? 'missing' : e.source !== op.source ? 'forbidden' : 'removed';
        expect(outcome).toBe(want);
        if (want === 'removed') model.delete(k);
        break;
      }
      case 'search': {
        // One round of searches returns every live holder exactly once, with its digest.
        const holders = live().filter(([k]) => k.endsWith(`|${op.name}`));
        const want = holders.map(([k, e]) => `${k}|${e.sha256}`).sort();
        const got: string[] = [];
        for (let i = 0; i < Math.max(1, holders.length); i++) {
          const x = r.nextHolder(op.name, now);
          if (x) got.push(`${keyOf(x.addr, x.port, x.filename)}|${x.sha256}`);
        }
        expect(got.sort()).toEqual(want);
        break;
      }
      case 'leave': {
        const removed = r
          .leave(op.source)
          .map((x) => keyOf(x.addr, x.port, x.filename))
          .sort();
        const want = [...model].filter(([, e]) => e.source === op.source).map(([k]) => k);
        // leave() may also return expired registrations it had not swept yet; live ones must all be there.
        expect(removed).toEqual(expect.arrayContaining(want.filter((k) => model.get(k)!.expiresAt > now)));
        for (const k of want) model.delete(k);
        break;
      }
      case 'expire': {
        r.expire(now);
        for (const [k, e] of model) if (e.expiresAt <= now) model.delete(k);
        expect(r.size).toBe(model.size);
        break;
      }
      case 'tick':
        now += op.ms;
        break;
    }
    // The listing always matches the model's live registrations grouped by server.
    const want = new Map<string, string[]>();
    for (const [k] of live()) {
      const [addr, port, name] = k.split('|');
      const server = `${addr}|${port}`;
      want.set(server, [...(want.get(server) ?? []), name].sort());
    }
    const got = new Map(listing(r, now).map((s) => [`${s.addr}|${s.port}`, [...s.names].sort()]));
    expect(got).toEqual(want);
    for (const source of SOURCES) {
      if (live().some(([, e]) => e.source === source)) expect(r.hasSource(source)).toBe(true);
    }
  }
  r.expire(now);
  expect(r.size).toBe(live().length);
}

describe('Registry: model-based', () => {
  it('agrees with a Map model under random operations', () => {
    fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 150, size: 'max' }), runModel), { numRuns: 200 });
  });

  it('keeps lists consistent through heavy slot and id reuse (seeded, thousands of keys)', () => {
    // Enough names, servers and registrations to grow the slot arrays past 1024 and the
    // per-id head arrays past 256, with removals in between so freed slots and ids are reused.
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const r = new Registry({ ttlMs: TTL });
    const model = new Map<string, { source: string; sha: string | undefined }>();
    const names = Array.from({ length: 400 }, (_, i) => `file-${i}`);
    const addrs = Array.from({ length: 30 }, (_, i) => `10.1.${i >> 4}.${i & 15}`);
    for (let step = 0; step < 30_000; step++) {
      const name = names[rand(names.length)];
      const addr = addrs[rand(addrs.length)];
      const port = 1 + rand(10);
      const k = keyOf(addr, port, name);
      const roll = rand(10);
      if (roll < 6) {
        const digest = rand(2) ? sha(k) : undefined;
        const outcome = r.register(h(name, addr, port, digest), addr, 0);
        expect(outcome).toBe(model.has(k) ? 'refreshed' : 'added');
        model.set(k, { source: addr, sha: digest ?? model.get(k)?.sha });
      } else if (roll < 9) {
        expect(r.deregister(h(name, addr, port), addr, 0)).toBe(model.has(k) ? 'removed' : 'missing');
        model.delete(k);
      } else if (rand(50) === 0) {
        r.leave(addr);
        for (const key of [...model.keys()]) if (key.startsWith(`${addr}|`)) model.delete(key);
      } else {
        const x = r.nextHolder(name, 0);
        if (x) expect(model.get(keyOf(x.addr, x.port, x.filename))?.sha).toBe(x.sha256);
        else expect([...model.keys()].some((key) => key.endsWith(`|${name}`))).toBe(false);
      }
      if (step % 5000 === 4999 || step === 29_999) {
        expect(r.size).toBe(model.size);
        const got = listing(r, 0).flatMap((s) => s.names.map((n) => keyOf(s.addr, s.port, n)));
        expect(got.length).toBe(new Set(got).size);
        expect(new Set(got)).toEqual(new Set(model.keys()));
      }
    }
    // Everything can be removed again, leaving a clean registry.
    for (const k of model.keys()) {
      const [addr, port, name] = k.split('|');
      expect(r.deregister(h(name, addr, Number(port)), addr, 0)).toBe('removed');
    }
    expect(r.size).toBe(0);
    expect(listing(r, 0)).toEqual([]);
  });

  it('grows past its initial capacity and expires a large batch', () => {
    const r = new Registry({ ttlMs: TTL });
    for (let i = 0; i < 5000; i++) r.register(h(`f${i}`, `10.2.${(i >> 8) & 255}.${i & 255}`), 'src', i < 2500 ? 0 : 500);
    expect(r.size).toBe(5000);
    expect(r.expire(TTL)).toBe(2500);
    expect(r.size).toBe(2500);
    expect(r.nextHolder('f0', TTL)).toBeUndefined();
    expect(r.nextHolder('f4999', TTL)?.filename).toBe('f4999');
    expect(r.leave('src')).toHaveLength(2500);
    expect(r.size).toBe(0);
  });
});

describe('sha256 text', () => {
  it('is echoed exactly as registered, spare bits included', () => {
    const r = new Registry({ ttlMs: 1000 });
    for (const sha256 of ['x'.repeat(43), 'A'.repeat(42) + 'B', '_'.repeat(43), 'a'.repeat(42) + '-']) {
      r.register({ port: 9100, addr: '127.0.0.1', filename: 'f', sha256 }, '127.0.0.1', 0);
      expect(r.nextHolder('f', 1)?.sha256).toBe(sha256);
    }
  });
});
