/** SHA-256 of files, as the protocol's base64url text (43 characters, no padding). */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export interface FileIdentity {
  size: number;
  mtimeMs: number;
  ino: number;
}

/**
 * A SHA-256 fed with the file's first `length` bytes (default: all of it), still open so a
 * caller can go on feeding it (a resumed download continues after its kept bytes).
 */
export async function hashFile(path: string, length?: number): Promise<Hash> {
  const hash = createHash('sha256');
  if (length === 0) return hash;
  const end = length === undefined ? undefined : length - 1;
  for await (const chunk of createReadStream(path, { end, highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash;
}

/** The whole file's SHA-256 as base64url text. */
export const sha256File = async (path: string): Promise<string> => (await hashFile(path)).digest('base64url');

/**
 * Remembers each file's digest against its size, mtime and inode, so a file is hashed once
 * and again only when it changes. Concurrent requests for the same file share one hashing.
 */
export class DigestCache {
  readonly #entries = new Map<string, { id: FileIdentity; digest: Promise<string> }>();

  get(path: string, id: FileIdentity): Promise<string> {
    const hit = this.#entries.get(path);
    if (hit && hit.id.size === id.size && hit.id.mtimeMs === id.mtimeMs && hit.id.ino === id.ino) return hit.digest;
    const digest = sha256File(path);
    this.#entries.set(path, { id, digest });
    digest.catch(() => this.#entries.delete(path));
    return digest;
  }

  forget(path: string): void {
    this.#entries.delete(path);
  }
}
