/**
 * PieceMap and pieceSizeFor: piece sizes, byte ranges, done counts and the saved bit field.
 * Pure, so plain tables plus a few fast-check properties.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAX_PIECE_SIZE, MIN_PIECE_SIZE, PieceMap, pieceSizeFor } from '../../../src/peer/swarm/piece-map.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** A small map (size and piece size) and which of its pieces are done. */
const mapWithDone = fc.record({ size: fc.integer({ min: 0, max: 500 }), pieceSize: fc.integer({ min: 1, max: 40 }) }).chain(({ size, pieceSize }) =>
  fc.record({
    size: fc.constant(size),
    pieceSize: fc.constant(pieceSize),
    done: fc.array(fc.boolean(), { minLength: Math.ceil(size / pieceSize), maxLength: Math.ceil(size / pieceSize) }),
  }),
);

function build({ size, pieceSize, done }: { size: number; pieceSize: number; done: boolean[] }): PieceMap {
  const map = new PieceMap(size, pieceSize);
  done.forEach((d, i) => d && map.markDone(i));
  return map;
}

const doneList = (map: PieceMap) => Array.from({ length: map.count }, (_, i) => map.isDone(i));

describe('pieceSizeFor', () => {
  it('is a power of two between 256 KiB and 4 MiB, the smallest giving at most 256 pieces', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 45 }), (size) => {
        const p = pieceSizeFor(size);
        expect(p).toBeGreaterThanOrEqual(MIN_PIECE_SIZE);
        expect(p).toBeLessThanOrEqual(MAX_PIECE_SIZE);
        expect(Number.isInteger(Math.log2(p))).toBe(true);
        if (p < MAX_PIECE_SIZE) expect(Math.ceil(size / p)).toBeLessThanOrEqual(256);
        if (p > MIN_PIECE_SIZE) expect(Math.ceil(size / (p / 2))).toBeGreaterThan(256);
      }),
      { numRuns: 300 },
    );
  });

  it('hits the bounds and the steps between them', () => {
    expect(MIN_PIECE_SIZE).toBe(256 * KiB);
    expect(MAX_PIECE_SIZE).toBe(4 * MiB);
    expect(pieceSizeFor(0)).toBe(256 * KiB);
    expect(pieceSizeFor(64 * MiB)).toBe(256 * KiB); // exactly 256 pieces
    expect(pieceSizeFor(64 * MiB + 1)).toBe(512 * KiB);
    expect(pieceSizeFor(1024 * MiB)).toBe(4 * MiB);
    expect(pieceSizeFor(100 * 1024 * MiB)).toBe(4 * MiB); // capped: more than 256 pieces
  });
});

describe('PieceMap', () => {
  it('cuts the content into pieces, the last one shorter', () => {
    const map = new PieceMap(10, 4);
    expect(map.count).toBe(3);
    expect(map.range(0)).toEqual({ offset: 0, length: 4 });
    expect(map.range(2)).toEqual({ offset: 8, length: 2 });
    expect(new PieceMap(12, 4).range(2)).toEqual({ offset: 8, length: 4 });
    expect(map.pieceAt(7)).toBe(1);
    expect(map.pieceAt(8)).toBe(2);
    expect(new PieceMap(0).count).toBe(0);
    expect(new PieceMap(0).complete).toBe(true);
    expect(new PieceMap(5 * MiB).pieceSize).toBe(MIN_PIECE_SIZE);
  });

  it('ranges tile [0, size) exactly', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 1, max: 64 }), (size, pieceSize) => {
        const map = new PieceMap(size, pieceSize);
        const ranges = Array.from({ length: map.count }, (_, i) => map.range(i));
        expect(ranges.every((r, i) => r.length > 0 && r.offset === (i === 0 ? 0 : ranges[i - 1].offset + ranges[i - 1].length))).toBe(true);
        expect(ranges.every((r, i) => map.pieceAt(r.offset) === i && map.pieceAt(r.offset + r.length - 1) === i)).toBe(true);
        expect(ranges.reduce((sum, r) => sum + r.length, 0)).toBe(size);
      }),
      { numRuns: 100 },
    );
  });

  it('refuses bad sizes and pieces out of range', () => {
    expect(() => new PieceMap(-1)).toThrow(RangeError);
    expect(() => new PieceMap(1.5)).toThrow(RangeError);
    expect(() => new PieceMap(10, 0)).toThrow(RangeError);
    const map = new PieceMap(10, 4);
    expect(() => map.markDone(3)).toThrow(RangeError);
    expect(() => map.markDone(-1)).toThrow(RangeError);
    expect(() => map.markMissing(1.5)).toThrow(RangeError);
  });

  it('counts done pieces and bytes, marking twice counts once', () => {
    const map = new PieceMap(10, 4);
    expect(map.doneBytes).toBe(0);
    map.markDone(2);
    map.markDone(2);
    expect(map.doneCount).toBe(1);
    expect(map.doneBytes).toBe(2); // the short last piece
    map.markDone(0);
    expect(map.doneBytes).toBe(6);
    expect(map.donePrefix()).toBe(1);
    map.markMissing(2);
    map.markMissing(2);
    expect(map.doneBytes).toBe(4);
    map.markDone(1);
    map.markDone(2);
    expect(map.complete).toBe(true);
    expect(map.doneBytes).toBe(10);
    expect(map.donePrefix()).toBe(3);
  });

  it('doneBytes and doneCount match the done pieces, donePrefix the first missing one', () => {
    fc.assert(
      fc.property(mapWithDone, (input) => {
        const map = build(input);
        const done = input.done.flatMap((d, i) => (d ? [i] : []));
        expect(map.doneCount).toBe(done.length);
        expect(map.doneBytes).toBe(done.reduce((sum, i) => sum + map.range(i).length, 0));
        expect(map.complete).toBe(done.length === map.count);
        const firstMissing = input.done.indexOf(false);
        expect(map.donePrefix()).toBe(firstMissing === -1 ? map.count : firstMissing);
      }),
      { numRuns: 200 },
    );
  });

  it('round-trips through toJson / fromJson', () => {
    fc.assert(
      fc.property(mapWithDone, (input) => {
        const map = build(input);
        const json = JSON.parse(JSON.stringify(map.toJson()));
        const back = PieceMap.fromJson(input.size, json)!;
        expect(back).toBeDefined();
        expect(back.pieceSize).toBe(input.pieceSize);
        expect(doneList(back)).toEqual(input.done);
        expect(back.doneBytes).toBe(map.doneBytes);
      }),
      { numRuns: 200 },
    );
  });

  it('saves bit i of byte i>>3, most significant bit first', () => {
    const map = new PieceMap(10 * 4, 4);
    map.markDone(0);
    map.markDone(9);
    expect([...Buffer.from(map.toJson().done, 'base64')]).toEqual([0x80, 0x40]);
  });

  it('fromJson refuses a bit field of the wrong length and a bad piece size', () => {
    const saved = new PieceMap(100, 10).toJson(); // 10 pieces: 2 bytes
    expect(PieceMap.fromJson(100, saved)).toBeDefined();
    expect(PieceMap.fromJson(100, { ...saved, done: Buffer.alloc(1).toString('base64') })).toBeUndefined();
    expect(PieceMap.fromJson(100, { ...saved, done: Buffer.alloc(3).toString('base64') })).toBeUndefined();
    expect(PieceMap.fromJson(200, saved)).toBeUndefined(); // 20 pieces: 3 bytes
    expect(PieceMap.fromJson(100, { ...saved, pieceSize: 0 })).toBeUndefined();
    expect(PieceMap.fromJson(100, { ...saved, pieceSize: 2.5 })).toBeUndefined();
    expect(PieceMap.fromJson(100, { pieceSize: 10, done: 7 as unknown as string })).toBeUndefined();
  });

  it('fromJson rejects any bit field whose length is not ceil(count / 8)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.uint8Array({ maxLength: 40 }), (count, bytes) => {
        fc.pre(bytes.length !== Math.ceil(count / 8));
        expect(PieceMap.fromJson(count * 3, { pieceSize: 3, done: Buffer.from(bytes).toString('base64') })).toBeUndefined();
      }),
      { numRuns: 100 },
    );
  });

  it('fromPrefix marks only the whole pieces of the prefix done', () => {
    expect(doneList(PieceMap.fromPrefix(10, 0, 4))).toEqual([false, false, false]);
    expect(doneList(PieceMap.fromPrefix(10, 7, 4))).toEqual([true, false, false]);
    expect(doneList(PieceMap.fromPrefix(10, 8, 4))).toEqual([true, true, false]);
    expect(doneList(PieceMap.fromPrefix(10, 10, 4))).toEqual([true, true, true]); // the short last piece too
    expect(PieceMap.fromPrefix(10, 99, 4).complete).toBe(true);
    expect(PieceMap.fromPrefix(64 * MiB, 3 * MIN_PIECE_SIZE).doneBytes).toBe(3 * MIN_PIECE_SIZE);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 1, max: 40 }), fc.nat({ max: 600 }), (size, pieceSize, length) => {
        const map = PieceMap.fromPrefix(size, length, pieceSize);
        expect(map.donePrefix()).toBe(map.doneCount);
        expect(map.doneBytes).toBeLessThanOrEqual(Math.min(length, size));
        expect(map.doneBytes).toBeGreaterThan(Math.min(length, size) - pieceSize);
      }),
      { numRuns: 100 },
    );
  });
});
