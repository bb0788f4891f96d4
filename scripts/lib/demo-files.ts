/** Small helpers shared by the demos: generated files, folders, and digest comparison. */
import { mkdir } from 'node:fs/promises';
import { sha256File } from '../../src/peer/digest.js';

/** `size` bytes whose every 4 KiB block differs (and differ by `seed`), so a misplaced piece would change the digest. */
export function patterned(size: number, seed = 0): Buffer {
  const buf = Buffer.alloc(size);
  for (let at = 0; at < size; at += 4) buf.writeUInt32BE(((at + seed) * 2654435761) >>> 0, at);
  return buf;
}

export async function makeDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Throws unless `copy` has the same SHA-256 as `original`. */
export async function expectSame(original: string, copy: string): Promise<void> {
  const [x, y] = await Promise.all([sha256File(original), sha256File(copy)]);
  if (x !== y) throw new Error(`${copy} differs from ${original}`);
}
