/** SHA-256 of files, as the protocol's base64url text (43 characters, no padding). */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export interface FileIdentity {
  size: number;
  mtimeMs: number;
  ino: number;
}

/** Hashes `length` bytes from `start` (default: the whole file). */
export async function sha256File(path: string, start = 0, end?: number): Promise<string> {
  const hash = createHash('sha256');
  const stream = createReadStream(path, { start, end, highWaterMark: 1024 * 1024 });
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('base64url');
}

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
