/**
 * RateLimiter on fake timers: the clock it reads is the faked Date.now, so every wait is
 * checked to the millisecond without sleeping. parseRate is a plain table.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseRate, RateLimiter } from '../../src/peer/rate-limiter.js';

/** A limiter on the fake clock: 1000 B/s and a 1000-byte bucket unless told otherwise. */
const limiter = (bytesPerSecond = 1000, burstBytes: number | null = 1000) => new RateLimiter({ bytesPerSecond, burstBytes: burstBytes ?? undefined, now: () => Date.now() });

/** Tracks when a take resolves, so tests can look at it between clock steps. */
function track(p: Promise<void>): { readonly done: boolean } {
  const state = { done: false };
  void p.then(() => (state.done = true));
  return state;
}

const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

/** Checks that `p` is done `ms` from now exactly: still waiting 1 ms before (for ms > 0). */
async function expectResolvesIn(p: Promise<void>, ms: number): Promise<void> {
  const state = track(p);
  if (ms > 0) {
    await advance(ms - 1);
    expect(state.done).toBe(false);
  }
  await advance(Math.min(ms, 1));
  expect(state.done).toBe(true);
}

describe('RateLimiter', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('starts with a full bucket, then makes later takes wait for the rate', async () => {
    const l = limiter();
    await expectResolvesIn(l.take(1000), 0);
    await expectResolvesIn(l.take(500), 500);
  });

  it('refills only up to the burst after a quiet spell', async () => {
    const l = limiter();
    await advance(10_000); // would be 10,000 bytes without the cap
    await expectResolvesIn(l.take(1000), 0);
    await expectResolvesIn(l.take(1), 1);
  });

  it('lets a take larger than the bucket through after its share of the rate', async () => {
    const l = limiter();
    await expectResolvesIn(l.take(10_000), 9_000); // ten buckets: 1000 now, 9000 at 1000 B/s
  });

  it('serves waiters first come, first served: a small take never jumps the queue', async () => {
    const l = limiter();
    await l.take(1000);
    const order: string[] = [];
    const big = l.take(3000).then(() => order.push('big'));
    const small = l.take(1).then(() => order.push('small'));
    await advance(1500);
    expect(order).toEqual([]); // 1500 tokens came in, all owed to the head
    await advance(1500);
    expect(order).toEqual(['big']); // the small one's byte is earned only after the big one
    await advance(1);
    await Promise.all([big, small]);
    expect(order).toEqual(['big', 'small']);
    expect(l.waiting).toBe(0);
  });

  it('shares the rate evenly between connections that take in turns', async () => {
    const l = limiter(10_000, 1000);
    const sent = [0, 0];
    let running = true;
    const pump = async (i: number) => {
      while (running) {
        await l.take(500);
        sent[i] += 500;
      }
    };
    const loops = [pump(0), pump(1)];
    await advance(5_000);
    running = false;
    await l.close();
    await Promise.all(loops);
    // Never more than the rate allows (plus the first bucket), and split evenly.
    expect(sent[0] + sent[1]).toBeLessThanOrEqual(1000 + 10_000 * 5 + 1000);
    expect(sent[0] + sent[1]).toBeGreaterThanOrEqual(10_000 * 5);
    expect(Math.abs(sent[0] - sent[1])).toBeLessThanOrEqual(500);
  });

  it('close() lets every waiter go, later takes pass at once, and it can be called again', async () => {
    const l = limiter();
    await l.take(1000);
    const waiters = [track(l.take(5000)), track(l.take(1))];
    await l.close();
    await advance(0);
    expect(waiters.map((w) => w.done)).toEqual([true, true]);
    const after = track(l.take(1_000_000));
    await advance(0);
    expect(after.done).toBe(true);
    await l.close();
  });

  it('treats zero bytes as free and rejects nonsense counts and options', () => {
    const l = limiter();
    expect(l.take(0)).toBeInstanceOf(Promise);
    expect(() => l.take(-1)).toThrow(RangeError);
    expect(() => l.take(Number.NaN)).toThrow(RangeError);
    expect(() => l.take(Infinity)).toThrow(RangeError);
    expect(() => new RateLimiter({ bytesPerSecond: 0 })).toThrow(RangeError);
    expect(() => new RateLimiter({ bytesPerSecond: Infinity })).toThrow(RangeError);
    expect(() => new RateLimiter({ bytesPerSecond: 1000, burstBytes: 0 })).toThrow(RangeError);
  });

  it('defaults the burst to a tenth of a second of the rate, at least 64 KiB', async () => {
    const slow = limiter(1000, null);
    const small = track(slow.take(64 * 1024));
    const fast = limiter(10 * 1024 * 1024, null);
    const tenth = track(fast.take(1024 * 1024));
    const over = track(fast.take(1));
    await advance(0);
    expect([small.done, tenth.done, over.done]).toEqual([true, true, false]);
  });
});

describe('RateLimiter timers', () => {
  it('does not keep the process alive while it waits', async () => {
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    try {
      const l = new RateLimiter({ bytesPerSecond: 1000, burstBytes: 1000 });
      void l.take(2000); // 1000 owed after the first bucket: a timer is armed
      const timer = setTimeoutSpy.mock.results.at(-1)?.value as NodeJS.Timeout;
      expect(timer.hasRef()).toBe(false);
      await l.close();
    } finally {
      setTimeoutSpy.mockRestore();
    }
  });
});

describe('parseRate', () => {
  const K = 1024;
  it.each([
    ['1000', 1000],
    ['1', 1],
    ['500k', 500 * K],
    ['500K', 500 * K],
    ['10M', 10 * K * K],
    ['10m', 10 * K * K],
    ['1.5G', 1.5 * K * K * K],
    ['10MB', 10 * K * K],
    ['10MiB', 10 * K * K],
    ['64kb/s', 64 * K],
    ['2 MiB/s', 2 * K * K],
    ['100B', 100],
    ['100/s', 100],
    ['.5k', 512],
    [' 7k ', 7 * K],
    ['1.0001', 1],
  ])('%j is %d bytes per second', (text, bytes) => {
    expect(parseRate(text)).toBe(bytes);
  });

  it.each(['', 'xyz', '0', '0k', '0.5', '-1', '-5M', 'NaN', 'Infinity', '1e6', '10T', '10 M B', 'k', '.', '1.2.3', '10Mbit', '10/m', '0x10', '1_000', `${'9'.repeat(400)}`])(
    '%j is not a rate',
    (text) => {
      expect(parseRate(text)).toBeUndefined();
    },
  );
});
