/**
 * Picker: a small simulation of holders drives it the way swarm-download.ts does (pick, write
 * the run's pieces in order skipping done ones, finish; cancel the other holders of a piece
 * when they have nothing left), with the interleaving, failures and lies chosen by fast-check.
 * Plain unit tests pin the run lengths and the endgame choice.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PieceMap } from '../../../src/peer/swarm/piece-map.js';
import { EARLIER_RUN, Picker, type Assignment, type PickerOptions } from '../../../src/peer/swarm/picker.js';

// ---- the simulation ----------------------------------------------------------------------

/**
 * How one holder behaves: how fast it writes, how many of its requests fail, and whether,
 * once it has written `after` pieces, it leaves for good or is caught lying.
 */
interface Plan {
  speed: number;
  failures: number;
  exit: 'stay' | 'leave' | 'lie';
  after: number;
}

interface SimHolder {
  name: string;
  plan: Plan;
  failuresLeft: number;
  written: number;
  /** Idle holders pick; waiting ones found nothing to do and wait for something to change. */
  state: 'idle' | 'busy' | 'waiting' | 'gone';
  a?: Assignment | undefined;
}

interface SimResult {
  picker: Picker;
  holders: SimHolder[];
  /** Every assignment pick() returned, in order. */
  assignments: Assignment[];
  /** How many times each piece was completed. */
  completions: number[];
}

const range = (first: number, count: number) => Array.from({ length: count }, (_, i) => first + i);
const piecesOf = (a: Assignment) => range(a.first, a.count);
const missingPieces = (map: PieceMap) => range(0, map.count).filter((i) => !map.isDone(i));

/** A cheap assertion for the simulation's inner loop (expect() on every step is slow). */
function ensure(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

/** A small seeded PRNG (mulberry32) giving numbers in [0, n): fast-check picks the seed, the seed picks every step. */
function random(seed: number): (n: number) => number {
  let t = seed >>> 0;
  return (n) => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), t | 1);
    r ^= r + Math.imul(r ^ (r >>> 7), r | 61);
    return (((r ^ (r >>> 14)) >>> 0) / 2 ** 32) * n;
  };
}

/**
 * Runs holders against `picker` until none can act. `seed` decides which holder acts next
 * and how; `plans` give each holder's failures. Checks the invariants of every step.
 */
function simulate(picker: Picker, plans: Plan[], seed: number): SimResult {
  const choose = random(seed);
  const { map } = picker;
  const holders: SimHolder[] = plans.map((plan, i) => ({ name: `h${i}`, plan, failuresLeft: plan.failures, written: 0, state: 'idle' }));
  const byId = new Map<number, SimHolder>();
  const assignments: Assignment[] = [];
  const completions = new Array<number>(map.count).fill(0);
  let step = 0;

  const wakeAll = () => holders.forEach((h) => h.state === 'waiting' && (h.state = 'idle'));
  const end = (h: SimHolder) => {
    picker.finish(h.a!.id);
    byId.delete(h.a!.id);
    h.a = undefined;
    h.state = 'idle';
    wakeAll();
  };
  const open = () => holders.filter((h) => h.a);

  const pick = (h: SimHolder) => {
    const active = holders.filter((o) => o.state === 'busy' || o.state === 'idle').length;
    const a = picker.pick(h.name, active);
    if (!a) {
      h.state = 'waiting';
      return;
    }
    ensure(a.holder === h.name && a.count > 0, `bad assignment ${JSON.stringify(a)}`);
    for (const i of piecesOf(a)) {
      ensure(!map.isDone(i), `piece ${i} is done but was assigned`);
      const fetching = open().filter((o) => i >= o.a!.first && i < o.a!.first + o.a!.count);
      if (!a.endgame) ensure(fetching.length === 0, `piece ${i} assigned to ${h.name} while ${fetching[0]?.name} fetches it`);
      else ensure(a.count === 1 && fetching.length > 0 && !fetching.includes(h), `endgame piece ${i} for ${h.name}: fetched by ${fetching.map((o) => o.name).join(', ')}`);
    }
    assignments.push(a);
    byId.set(a.id, h);
    h.a = a;
    h.state = 'busy';
  };

  /** The next piece of its run, skipping done ones (as RangeSink does); finishes when none is left. */
  const write = (h: SimHolder) => {
    const piece = piecesOf(h.a!).find((i) => !map.isDone(i));
    if (piece === undefined) return end(h);
    completions[piece]++;
    h.written++;
    for (const id of picker.complete(h.a!.id, piece)) {
      const other = byId.get(id);
      ensure(other !== undefined, `complete() named request ${id}, which is not open`);
      if (other!.a!.endgame || !picker.hasWorkLeft(id)) end(other!);
    }
    ensure(picker.sourceOf(piece) === h.name, `piece ${piece} not credited to ${h.name}`);
  };

  /** The request fails part way; the holder rests and comes back, or goes away for good. */
  const fail = (h: SimHolder, final: boolean) => {
    if (h.a) end(h);
    if (!final) return;
    h.state = 'gone';
    if (h.plan.exit === 'lie') {
      const sent = range(0, map.count).filter((i) => map.isDone(i) && picker.sourceOf(i) === h.name);
      expect(picker.dropSource(h.name)).toBe(sent.length);
      for (const i of sent) expect(map.isDone(i)).toBe(false);
      wakeAll();
    }
  };

  for (;;) {
    /** What may happen next, each with its weight: fast holders write more often. */
    const actions: [number, () => void][] = [];
    for (const h of holders) {
      if (h.state === 'idle') actions.push([4, () => pick(h)]);
      if (h.state === 'busy') actions.push([h.plan.speed, () => write(h)]);
      if (h.state === 'busy' && h.failuresLeft > 0) actions.push([1, () => (h.failuresLeft--, fail(h, false))]);
      // Once it has written `after` pieces it may go; a lie is found even while it is idle (the SHA-256 check).
      const exits = h.state !== 'gone' && h.plan.exit !== 'stay' && h.written >= h.plan.after;
      if (exits && (h.state === 'busy' || h.plan.exit === 'lie')) actions.push([1, () => fail(h, true)]);
    }
    if (actions.length === 0) break;
    ensure(step++ < 100_000, 'the simulation does not end');
    let r = choose(actions.reduce((sum, [w]) => sum + w, 0));
    (actions.find(([w]) => (r -= w) < 0) ?? actions.at(-1)!)[1]();
  }
  expect(picker.openRequests).toBe(0);
  return { picker, holders, assignments, completions };
}

/** Picks with a fresh holder until nothing is left: a clean picker hands out exactly the missing pieces. */
function expectCleanState(picker: Picker): void {
  expect(picker.openRequests).toBe(0);
  const got: number[] = [];
  for (let a = picker.pick('fresh'); a; a = picker.pick('fresh')) {
    expect(a.endgame).toBe(false);
    got.push(...piecesOf(a));
  }
  expect(got).toEqual(missingPieces(picker.map));
}

// ---- arbitraries -------------------------------------------------------------------------

/** A fresh map of a few to a few hundred pieces (tiny piece sizes keep the loops cheap). */
const freshMap = fc.record({ size: fc.integer({ min: 0, max: 300 }), pieceSize: fc.integer({ min: 1, max: 8 }) }).map(({ size, pieceSize }) => new PieceMap(size, pieceSize));
const maxRuns = fc.integer({ min: 1, max: 16 });
const seeds = fc.noBias(fc.integer());
const plan = (failures: fc.Arbitrary<number>, exit: fc.Arbitrary<Plan['exit']>) => fc.record({ speed: fc.constantFrom(0.1, 1, 10), failures, exit, after: fc.nat({ max: 40 }) });
const steady = plan(fc.constant(0), fc.constant('stay'));
const holderPlans = (p: fc.Arbitrary<Plan>) => fc.array(p, { minLength: 1, maxLength: 5 });
const flaky = holderPlans(plan(fc.nat({ max: 3 }), fc.constantFrom('stay', 'leave', 'lie')));

/** A map resumed from an earlier run: a random done set saved and restored, or an old prefix. */
const resumedMap = fc.oneof(
  fc.record({ pieceSize: fc.integer({ min: 1, max: 8 }), done: fc.array(fc.boolean(), { maxLength: 60 }), tail: fc.nat({ max: 7 }) }).map(({ pieceSize, done, tail }) => {
    const size = Math.max(0, done.length * pieceSize - Math.min(tail, pieceSize - 1));
    const saved = new PieceMap(size, pieceSize);
    done.forEach((d, i) => d && saved.markDone(i));
    return PieceMap.fromJson(size, saved.toJson())!;
  }),
  fc
    .record({ size: fc.integer({ min: 0, max: 300 }), pieceSize: fc.integer({ min: 1, max: 8 }), length: fc.nat({ max: 320 }) })
    .map(({ size, pieceSize, length }) => PieceMap.fromPrefix(size, length, pieceSize)),
);

const run = (options: PickerOptions, map: PieceMap, plans: Plan[], seed: number) => simulate(new Picker(map, options), plans, seed);
const NUM_RUNS = { numRuns: 100 };

// ---- properties --------------------------------------------------------------------------

describe('Picker properties', () => {
  it('without failures or endgame, every byte is fetched exactly once', () => {
    fc.assert(
      fc.property(freshMap, maxRuns, holderPlans(steady), seeds, (map, maxRun, plans, seed) => {
        const { assignments, completions } = run({ endgame: false, maxRun }, map, plans, seed);
        expect(map.complete).toBe(true);
        expect(completions).toEqual(new Array(map.count).fill(1));
        expect(assignments.every((a) => !a.endgame && a.count <= maxRun)).toBe(true);
        // The assigned byte ranges tile [0, size): no gap, no overlap.
        const bytes = assignments
          .map((a) => [map.range(a.first).offset, map.range(a.first + a.count - 1)] as const)
          .map(([start, last]) => [start, last.offset + last.length] as const)
          .sort((x, y) => x[0] - y[0]);
        expect(bytes.every(([start], i) => start === (i === 0 ? 0 : bytes[i - 1][1]))).toBe(true);
        expect(bytes.at(-1)?.[1] ?? 0).toBe(map.size);
      }),
      NUM_RUNS,
    );
  });

  it('with endgame, pieces may be fetched twice but are written once and the download completes', () => {
    fc.assert(
      fc.property(freshMap, maxRuns, holderPlans(steady), seeds, (map, maxRun, plans, seed) => {
        const { completions } = run({ maxRun }, map, plans, seed);
        expect(map.complete).toBe(true);
        expect(completions).toEqual(new Array(map.count).fill(1));
      }),
      NUM_RUNS,
    );
  });

  it('after any failures and lies the map is complete while a holder stays, else the picker is clean', () => {
    fc.assert(
      fc.property(freshMap, maxRuns, fc.boolean(), flaky, seeds, (map, maxRun, endgame, plans, seed) => {
        const { picker, holders } = run({ maxRun, endgame }, map, plans, seed);
        if (plans.some((p) => p.exit === 'stay')) expect(map.complete).toBe(true);
        if (!map.complete) expect(holders.every((h) => h.state === 'gone')).toBe(true);
        expectCleanState(picker);
      }),
      NUM_RUNS,
    );
  });

  // The simulation above meets this rarely (a liar must copy a slow run's tail, then be caught
  // while that run is still open), so it is also driven directly.
  it('a liar caught while a run it copied from is open does not get that piece handed out twice', () => {
    fc.assert(
      fc.property(fc.integer({ min: 4, max: 40 }), fc.nat(), fc.nat(), (count, written, stolen) => {
        const p = new Picker(new PieceMap(count, 1));
        const slow = p.pick('slow', 1)!; // half the pieces
        // Fast holders fetch everything else, then a liar copies the tail of the slow run.
        let a: Assignment | undefined;
        while ((a = p.pick('fast', 1)) && !a.endgame) {
          for (const i of piecesOf(a)) p.complete(a.id, i);
          p.finish(a.id);
        }
        p.finish(a!.id); // its endgame copy is not needed
        written %= slow.count - 1;
        for (const i of range(slow.first, written)) p.complete(slow.id, i);
        stolen = 1 + (stolen % (slow.count - written - 1));
        for (let k = 0; k < stolen; k++) {
          const e = p.pick('liar', 1)!;
          expect(e).toMatchObject({ endgame: true, first: slow.first + slow.count - 1 - k });
          expect(p.complete(e.id, e.first)).toEqual([slow.id]);
          p.finish(e.id);
        }
        expect(p.dropSource('liar')).toBe(stolen);
        expect(p.hasWorkLeft(slow.id)).toBe(true);
        // While the slow run is open its pieces are only given out as endgame copies.
        for (a = p.pick('fresh', 1); a; a = p.pick('fresh', 1)) {
          expect(a.endgame || a.first + a.count <= slow.first || a.first >= slow.first + slow.count).toBe(true);
        }
      }),
      NUM_RUNS,
    );
  });

  it('a resumed map never has a done piece assigned, endgame or not', () => {
    fc.assert(
      fc.property(resumedMap, maxRuns, fc.boolean(), holderPlans(steady), seeds, (map, maxRun, endgame, plans, seed) => {
        const before = range(0, map.count).filter((i) => map.isDone(i));
        const { picker, assignments, completions } = run({ maxRun, endgame }, map, plans, seed);
        const assigned = new Set(assignments.flatMap(piecesOf));
        for (const i of before) {
          expect(assigned.has(i)).toBe(false);
          expect(completions[i]).toBe(0);
          expect(picker.sourceOf(i)).toBe(EARLIER_RUN);
        }
        expect(map.complete).toBe(true);
      }),
      NUM_RUNS,
    );
  });
});

// ---- unit tests --------------------------------------------------------------------------

describe('Picker', () => {
  /** A picker over `count` one-byte pieces, with `done` already on disk. */
  function picker(count: number, options: PickerOptions = {}, done: number[] = []): Picker {
    const map = new PieceMap(count, 1);
    for (const i of done) map.markDone(i);
    return new Picker(map, options);
  }
  const runOf = (a: Assignment | undefined) => a && { first: a.first, count: a.count, endgame: a.endgame };

  it('hands out runs of missing pieces, lowest first, skipping done ones', () => {
    const p = picker(10, {}, [0, 3]);
    expect(runOf(p.pick('a', 1))).toEqual({ first: 1, count: 2, endgame: false }); // stops at done piece 3
    expect(runOf(p.pick('b', 1))).toEqual({ first: 4, count: 3, endgame: false }); // 6 free: half
    expect(p.openRequests).toBe(2);
    expect(p.sourceOf(0)).toBe(EARLIER_RUN);
    expect(p.sourceOf(1)).toBeUndefined();
  });

  it('shortens runs as more holders are active, down to one piece', () => {
    const lengths = [1, 2, 4, 8, 16, 32, 64, 1000].map((active) => picker(64).pick('a', active)!.count);
    expect(lengths).toEqual([16, 16, 8, 4, 2, 1, 1, 1]);
    expect(picker(64, { maxRun: 4 }).pick('a', 1)!.count).toBe(4);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 20 }), (count, active) => {
        expect(picker(count).pick('a', active + 1)!.count).toBeLessThanOrEqual(picker(count).pick('a', active)!.count);
      }),
      { numRuns: 100 },
    );
  });

  /** Eight pieces split between a (0-3), b (4-5), c (6) and d (7). */
  function allReserved(options: PickerOptions = {}): Picker {
    const p = picker(8, options);
    expect(['a', 'b', 'c', 'd'].map((h) => runOf(p.pick(h, 1)))).toEqual([
      { first: 0, count: 4, endgame: false },
      { first: 4, count: 2, endgame: false },
      { first: 6, count: 1, endgame: false },
      { first: 7, count: 1, endgame: false },
    ]);
    return p;
  }

  it('in endgame, asks for the last missing piece of the run with most pieces left', () => {
    const p = allReserved();
    const e = p.pick('e', 1)!;
    expect(runOf(e)).toEqual({ first: 3, count: 1, endgame: true });
    // a writes 0-2; its piece 3 is already doubled, so b's run now has most left.
    for (const i of [0, 1, 2]) expect(p.complete(1, i)).toEqual([]);
    expect(runOf(p.pick('f', 1))).toEqual({ first: 5, count: 1, endgame: true });
    // The endgame copy arrives first: a's request is the other holder of piece 3.
    expect(p.complete(e.id, 3)).toEqual([1]);
    expect(p.hasWorkLeft(1)).toBe(false);
    expect(p.sourceOf(3)).toBe('e');
  });

  it('in endgame, never gives a holder a piece it is fetching itself', () => {
    const p = allReserved();
    expect(runOf(p.pick('a', 1))).toEqual({ first: 5, count: 1, endgame: true }); // not from its own 0-3
    expect(runOf(p.pick('b', 1))).toEqual({ first: 3, count: 1, endgame: true }); // not 5 (its own run)
    expect(runOf(p.pick('a', 1))).toEqual({ first: 4, count: 1, endgame: true }); // 5 is doubled already
    const only = picker(1);
    only.pick('a', 1);
    expect(only.pick('a', 1)).toBeUndefined(); // only its own request is open
  });

  it('makes no endgame requests when told not to', () => {
    expect(allReserved({ endgame: false }).pick('e', 1)).toBeUndefined();
  });

  it('frees the unfinished pieces of a finished request', () => {
    const p = picker(8);
    const a = p.pick('a', 1)!; // 0-3
    p.complete(a.id, 0);
    p.finish(a.id);
    p.finish(a.id); // twice is harmless
    expect(p.openRequests).toBe(0);
    expect(runOf(p.pick('b', 1))).toEqual({ first: 1, count: 3, endgame: false });
    expect(() => p.complete(a.id, 1)).toThrow(RangeError);
    expect(p.hasWorkLeft(a.id)).toBe(false);
  });

  it('refuses to complete a piece outside the request', () => {
    const p = picker(8);
    const a = p.pick('a', 1)!;
    expect(() => p.complete(a.id, a.first + a.count)).toThrow(RangeError);
  });

  it('dropSource forgets every piece the holder sent and returns how many', () => {
    const p = picker(8, {}, [7]);
    const a = p.pick('liar', 1)!; // 0-2 (7 free pieces: 3)
    const b = p.pick('honest', 1)!; // 3-4
    for (const i of piecesOf(a)) p.complete(a.id, i);
    p.complete(b.id, 3);
    p.finish(a.id);
    expect(p.dropSource('liar')).toBe(3);
    expect(missingPieces(p.map)).toEqual([0, 1, 2, 4, 5, 6]);
    expect(p.sourceOf(0)).toBeUndefined();
    expect(p.sourceOf(3)).toBe('honest');
    expect(p.dropSource('liar')).toBe(0);
    expect(p.dropSource(EARLIER_RUN)).toBe(1);
    expect(runOf(p.pick('c', 1))).toEqual({ first: 0, count: 3, endgame: false });
  });

  it('a dropped piece inside a run still being fetched stays with that run', () => {
    const p = allReserved();
    const e = p.pick('e', 1)!; // endgame copy of a's piece 3
    expect(p.complete(e.id, 3)).toEqual([1]); // a still has 0-2 to write: it keeps going
    p.finish(e.id);
    expect(p.dropSource('e')).toBe(1); // e lied: piece 3 is missing, and a's run will write it
    expect(p.hasWorkLeft(1)).toBe(true);
    // Nobody else is handed piece 3 as a run of its own; an endgame copy is still allowed.
    expect(runOf(p.pick('f', 1))).toEqual({ first: 3, count: 1, endgame: true });
    p.finish(1);
    expect(runOf(p.pick('g', 1))).toEqual({ first: 0, count: 1, endgame: false }); // a's 0-2 are free again
  });

  it('forget and setSource adjust a single piece', () => {
    const p = picker(4, {}, [0, 1]);
    p.forget(1);
    p.setSource(0, 'repaired');
    expect(missingPieces(p.map)).toEqual([1, 2, 3]);
    expect(p.sourceOf(0)).toBe('repaired');
    expect(p.sourceOf(1)).toBeUndefined();
  });
});
