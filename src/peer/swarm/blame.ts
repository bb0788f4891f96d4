/**
 * Finding the liar when a finished swarm download does not match its SHA-256.
 *
 * Protocol v1 has no per-piece digests, so every piece is asked again of a holder other than
 * the one that sent it (a second opinion) and the two copies are compared. Where they differ,
 * the second copy is kept aside (the .alt file). Then, for each holder involved in a dispute,
 * the hypothesis "this one lied" is tested: take the other side's copy of every piece it is
 * involved in and hash the whole file. The hypothesis whose file matches the announced
 * SHA-256 names the liar, and its copy is replaced. One honest holder beside any number of
 * pieces from a single liar (or from a corrupted earlier run) is always settled this way.
 */
import { createHash } from 'node:crypto';
import type { PieceMap } from './piece-map.js';
import type { PieceStore } from './piece-store.js';

export interface Dispute {
  piece: number;
  /** Who sent the copy on disk. */
  source: string;
  /** Who sent the copy kept aside. */
  checker: string;
}

export interface BlameDeps {
  map: PieceMap;
  store: PieceStore;
  expected: string;
  sourceOf(i: number): string | undefined;
  /** Holders that may be asked for second opinions. */
  checkers(): string[];
  /** One piece from one holder, in memory; rejects when the holder fails. */
  fetchPiece(holder: string, i: number): Promise<Buffer>;
}

export type BlameOutcome =
  { kind: 'repaired'; liar: string; pieces: number[] } | { kind: 'agreed'; checked: number } | { kind: 'undecided'; disputes: Dispute[]; unchecked: number };

const sha = (data: Buffer) => createHash('sha256').update(data).digest();

export async function findLiar(deps: BlameDeps): Promise<BlameOutcome> {
  const { disputes, unchecked } = await secondOpinions(deps);
  if (disputes.length === 0) return unchecked === 0 ? { kind: 'agreed', checked: deps.map.count } : { kind: 'undecided', disputes, unchecked };
  const suspects = [...new Set(disputes.flatMap((d) => [d.source, d.checker]))];
  for (const liar of suspects) {
    const fromAlt = new Set(disputes.filter((d) => d.source === liar).map((d) => d.piece));
    if (fromAlt.size > 0 && (await hashWith(deps, fromAlt)) === deps.expected) {
      for (const i of fromAlt) await deps.store.write(await deps.store.readPiece(i, 'alt'), deps.map.range(i).offset);
      return { kind: 'repaired', liar, pieces: [...fromAlt] };
    }
  }
  return { kind: 'undecided', disputes, unchecked };
}

/** Asks every piece of a holder other than its source, in parallel across holders. */
async function secondOpinions(deps: BlameDeps): Promise<{ disputes: Dispute[]; unchecked: number }> {
  const holders = deps.checkers();
  const queues = new Map<string, number[]>(holders.map((h) => [h, []]));
  let unchecked = 0;
  for (let i = 0; i < deps.map.count; i++) {
    const others = holders.filter((h) => h !== deps.sourceOf(i));
    if (others.length === 0) unchecked++;
    else queues.get(others[i % others.length])!.push(i);
  }
  const disputes: Dispute[] = [];
  await Promise.all(
    [...queues].map(async ([first, pieces]) => {
      for (const i of pieces) {
        const source = deps.sourceOf(i) ?? 'unknown';
        const got = await fetchFromAny(deps, i, [first, ...holders.filter((h) => h !== first && h !== source)]);
        if (!got) {
          unchecked++;
          continue;
        }
        if (!sha(got.data).equals(sha(await deps.store.readPiece(i)))) {
          await deps.store.writeAlt(i, got.data);
          disputes.push({ piece: i, source, checker: got.holder });
        }
      }
    }),
  );
  disputes.sort((a, b) => a.piece - b.piece);
  return { disputes, unchecked };
}

async function fetchFromAny(deps: BlameDeps, i: number, holders: string[]): Promise<{ holder: string; data: Buffer } | undefined> {
  for (const holder of holders) {
    const data = await deps.fetchPiece(holder, i).catch(() => undefined);
    if (data) return { holder, data };
  }
  return undefined;
}

/** The whole file's digest, with the pieces in `fromAlt` taken from the .alt file. */
async function hashWith(deps: BlameDeps, fromAlt: Set<number>): Promise<string> {
  const hash = createHash('sha256');
  for (let i = 0; i < deps.map.count; i++) hash.update(await deps.store.readPiece(i, fromAlt.has(i) ? 'alt' : 'part'));
  return hash.digest('base64url');
}
