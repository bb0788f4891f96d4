/**
 * A download in progress: the bytes received so far in `.peerdex-NAME.part` and, beside it,
 * `.peerdex-NAME.meta` saying which content (whole-file SHA-256 and size) they belong to.
 * An interrupted download leaves both, so the next run continues where it stopped; only a
 * verified file is ever renamed to its final name.
 */
import type { Hash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PeerdexError } from '../protocol/errors.js';
import { hashFile } from './digest.js';
import { TEMP_PREFIX } from './file-library.js';

export interface PartialMeta {
  sha256: string;
  size: number;
}

/** Turns a file-system error into a one-line ERR_FILE that says what to do. */
export function fileError(err: unknown, what: string): PeerdexError {
  const e = err as NodeJS.ErrnoException;
  const why =
    e.code === 'ENOSPC' ? 'no space left on the device'
    : e.code === 'EACCES' || e.code === 'EPERM' ? 'permission denied'
    : e.code === 'EROFS' ? 'the file system is read-only'
    : e.code === 'ENOENT' ? 'no such file or folder'
    : e.message;
  return new PeerdexError('ERR_FILE', `${what}: ${why}`, { cause: err });
}

export class PartialFile {
  readonly partPath: string;
  readonly metaPath: string;

  constructor(dir: string, name: string) {
    this.partPath = join(dir, `${TEMP_PREFIX}${name}.part`);
    this.metaPath = join(dir, `${TEMP_PREFIX}${name}.meta`);
  }

  /** Bytes kept from an earlier run and the content they belong to, or nothing usable. */
  async existing(): Promise<{ length: number; meta: PartialMeta } | undefined> {
    const st = await stat(this.partPath).catch(() => undefined);
    if (!st?.isFile()) return undefined;
    const meta = await readFile(this.metaPath, 'utf8')
      .then((text) => JSON.parse(text) as PartialMeta)
      .catch(() => undefined);
    if (!meta || typeof meta.sha256 !== 'string' || typeof meta.size !== 'number' || st.size > meta.size) {
      await this.discard();
      return undefined;
    }
    return { length: st.size, meta };
  }

  async writeMeta(meta: PartialMeta): Promise<void> {
    try {
      await writeFile(this.metaPath, JSON.stringify(meta));
    } catch (err) {
      throw fileError(err, `cannot write ${this.metaPath}`);
    }
  }

  /** A hash already fed with the first `length` bytes kept from before. */
  hashOfKept(length: number): Promise<Hash> {
    return hashFile(this.partPath, length);
  }

  /** Appends from `length` on (truncating anything after it). */
  openForAppend(length: number): WriteStream {
    return createWriteStream(this.partPath, { flags: length === 0 ? 'w' : 'r+', start: length, highWaterMark: 1024 * 1024 });
  }

  /** Moves the verified file to its final name and drops the metadata. */
  async commit(finalPath: string): Promise<void> {
    try {
      await rename(this.partPath, finalPath);
    } catch (err) {
      throw fileError(err, `cannot move the download into place as ${finalPath}`);
    }
    await rm(this.metaPath, { force: true });
  }

  async discard(): Promise<void> {
    await rm(this.partPath, { force: true });
    await rm(this.metaPath, { force: true });
  }
}
