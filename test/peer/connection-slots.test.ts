/** ConnectionSlots: the limits in all and per source, eviction of the idle longest, the idle clock. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConnectionSlots, type Slot, type SlotEnd } from '../../src/peer/connection-slots.js';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

function table(max = 3, maxPerSource = 2, idleTimeoutMs = 1000) {
  const slots = new ConnectionSlots({ max, maxPerSource, idleTimeoutMs });
  const ended: [string, SlotEnd][] = [];
  const admit = (source: string, label = source): Slot | string => slots.admit(source, (end) => ended.push([label, end]));
  return { slots, ended, admit };
}

const slot = (s: Slot | string): Slot => {
  if (typeof s === 'string') throw new Error(`refused: ${s}`);
  return s;
};

describe('ConnectionSlots', () => {
  it('refuses a source past its own limit, while others still get in', () => {
    const { slots, admit } = table(10, 2);
    slot(admit('a'));
    const second = slot(admit('a'));
    expect(admit('a')).toMatch(/from a \(limit 2\)/);
    slot(admit('b'));
    second.release();
    second.release(); // idempotent
    slot(admit('a'));
    expect(slots.size).toBe(3);
  });

  it('at the global limit evicts the connection idle longest; busy ones are never evicted', () => {
    const { slots, ended, admit } = table(3, 3);
    const first = slot(admit('a', 'first'));
    slot(admit('b', 'second'));
    slot(admit('c', 'third'));
    first.busy();
    vi.advanceTimersByTime(10);
    first.idle(); // now idle the shortest
    slot(admit('d', 'fourth'));
    expect(ended).toEqual([['second', 'evicted']]);
    expect(slots.size).toBe(3);
  });

  it('refuses a newcomer when every connection is busy', () => {
    const { ended, admit } = table(2, 2);
    slot(admit('a')).busy();
    slot(admit('b')).busy();
    expect(admit('c')).toMatch(/too many connections/);
    expect(ended).toEqual([]);
  });

  it('closes a connection idle for the timeout, and not one that is busy', () => {
    const { slots, ended, admit } = table(3, 3, 1000);
    slot(admit('a', 'idle'));
    const busy = slot(admit('b', 'busy'));
    busy.busy();
    vi.advanceTimersByTime(999);
    expect(ended).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ended).toEqual([['idle', 'idle']]);
    expect(slots.size).toBe(1);
    vi.advanceTimersByTime(5000);
    busy.idle();
    vi.advanceTimersByTime(1000);
    expect(ended).toEqual([
      ['idle', 'idle'],
      ['busy', 'idle'],
    ]);
    expect(slots.size).toBe(0);
  });
});
