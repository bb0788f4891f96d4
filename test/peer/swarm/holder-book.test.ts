/**
 * HolderBook: rests that double after each failure in a row, forgiveness on delivery,
 * permanent bans, and the order holders are offered in. Time is passed in, so no timers.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HolderBook } from '../../../src/peer/swarm/holder-book.js';

function book(...holders: string[]): HolderBook {
  const b = new HolderBook();
  for (const h of holders) b.add(h);
  return b;
}

/** Fails `holder` at `now` and returns how long it rests (checked to the millisecond). */
function restAfterFailure(b: HolderBook, holder: string, now: number): number {
  b.failed(holder, 'refused', now);
  const rest = b.nextRetryAt(now)! - now;
  expect(b.ready(now + rest - 1)).not.toContain(holder);
  expect(b.usable(now + rest - 1)).not.toContain(holder);
  expect(b.ready(now + rest)).toContain(holder);
  return rest;
}

describe('HolderBook', () => {
  it('adds a holder once', () => {
    const b = new HolderBook();
    expect(b.add('a')).toBe(true);
    expect(b.add('a')).toBe(false);
    expect(b.size).toBe(1);
    expect(b.has('a')).toBe(true);
    expect(b.has('b')).toBe(false);
    expect(() => b.failed('b', 'x', 0)).toThrow(RangeError);
  });

  it('rests 500 ms after a failure, doubling with each failure in a row up to 8 s', () => {
    const b = book('a');
    let now = 1000;
    const rests: number[] = [];
    for (let i = 0; i < 7; i++) {
      rests.push(restAfterFailure(b, 'a', now));
      now += rests.at(-1)!;
    }
    expect(rests).toEqual([500, 1000, 2000, 4000, 8000, 8000, 8000]);
    expect(b.report()).toEqual([{ holder: 'a', state: 'failed', bytes: 0, reason: 'refused' }]);
  });

  it('never rests longer than 8 s however many failures', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2000 }), (failures) => {
        const b = book('a');
        for (let i = 0; i < failures; i++) b.failed('a', 'x', 0);
        expect(b.nextRetryAt(0)).toBe(Math.min(8000, 500 * 2 ** (failures - 1)));
      }),
      { numRuns: 50 },
    );
  });

  it('forgives failures once the holder delivers', () => {
    const b = book('a');
    restAfterFailure(b, 'a', 0);
    restAfterFailure(b, 'a', 500);
    b.delivered('a', 1000, 10);
    expect(b.report()).toEqual([{ holder: 'a', state: 'ok', bytes: 1000 }]);
    expect(restAfterFailure(b, 'a', 5000)).toBe(500);
  });

  it('bans for good: no rest ends it and delivering does not lift it', () => {
    const b = book('a', 'b');
    b.ban('a', 'lied');
    b.delivered('a', 10, 1);
    for (const now of [0, 10_000, 1e12]) {
      expect(b.ready(now)).toEqual(['b']);
      expect(b.usable(now)).toEqual(['b']);
    }
    expect(b.add('a')).toBe(false);
    expect(b.isBanned('a')).toBe(true);
    expect(b.isBanned('zz')).toBe(false);
    expect(b.notBanned()).toEqual(['b']);
    expect(b.nextRetryAt(0)).toBeUndefined();
    expect(b.report()[0]).toEqual({ holder: 'a', state: 'banned', bytes: 10, reason: 'lied' });
  });

  it('offers the fastest holders first and leaves out busy and resting ones', () => {
    const b = book('slow', 'fast', 'new', 'busy', 'resting');
    b.delivered('slow', 1000, 1000); // 1 kB/s
    b.delivered('fast', 1000, 10); // 100 kB/s
    b.delivered('busy', 1e9, 1);
    b.setBusy('busy', true);
    b.failed('resting', 'x', 0);
    expect(b.ready(0)).toEqual(['fast', 'slow', 'new']);
    expect(b.busyCount()).toBe(1);
    expect(b.usable(0)).toEqual(['slow', 'fast', 'new', 'busy']);
    expect(b.notBanned()).toHaveLength(5);
    b.setBusy('busy', false);
    expect(b.ready(0)[0]).toBe('busy');
  });

  it('ready() is always sorted by rate, fastest first', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ bytes: fc.nat({ max: 1e6 }), ms: fc.nat({ max: 5000 }) }), { maxLength: 8 }), (deliveries) => {
        const b = new HolderBook();
        deliveries.forEach((d, i) => {
          b.add(`h${i}`);
          b.delivered(`h${i}`, d.bytes, d.ms);
        });
        const rates = b.ready(0).map((h) => b.rateOf(h));
        expect(rates).toHaveLength(deliveries.length);
        expect(rates).toEqual([...rates].sort((x, y) => y - x));
      }),
      { numRuns: 100 },
    );
  });

  it('smooths the rate over requests', () => {
    const b = book('a');
    b.delivered('a', 1000, 1000);
    expect(b.rateOf('a')).toBe(1000);
    b.delivered('a', 2000, 1000);
    expect(b.rateOf('a')).toBeCloseTo(1300);
    b.delivered('a', 0, 1000); // nothing arrived: the rate says nothing new
    expect(b.rateOf('a')).toBeCloseTo(1300);
    expect(b.rateOf('unknown')).toBe(0);
  });

  it('nextRetryAt is the earliest end of a rest', () => {
    const b = book('a', 'b', 'c');
    expect(b.nextRetryAt(0)).toBeUndefined();
    b.failed('a', 'x', 100); // until 600
    b.failed('b', 'x', 0); // until 500
    b.failed('b', 'x', 500); // until 1500
    expect(b.nextRetryAt(0)).toBe(600);
    expect(b.nextRetryAt(600)).toBe(1500);
    expect(b.nextRetryAt(1500)).toBeUndefined();
  });
});
