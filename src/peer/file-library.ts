/**
 * The folder a peer shares. Turns protocol names into open files, safely: a name must pass the
 * protocol's filename rules, and what is opened must be a regular file that is an entry of the
 * folder itself, even if the folder changes while it is being opened.
 *
 * How a symlink swapped in at any moment is kept from leaking a file from outside:
 * - the folder's real path is resolved once, so no component above an entry is a symlink;
 * - every file is opened with O_NOFOLLOW (a symlink in its place fails the open) and then the
 *   descriptor's device and inode (fstat) must equal those of a fresh lstat of the entry,
 *   which must be a regular file;
 * - a symlink inside the folder is served only when it resolves to a regular file directly
 *   in the folder (not in a subfolder, whose components could be swapped); the target is
 *   opened and checked as above, so a target swapped for a link fails too;
 * - digests are computed from the opened descriptor, never from a path opened again.
 * Hidden names (a leading dot) are not shared unless `includeHidden`, and neither is a link
 * to one; the library's own temporary files never are.
 */
import { constants } from 'node:fs';
import { lstat, open, realpath, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import fg from 'fast-glob';
import { PeerdexError } from '../protocol/errors.js';
import { filenameProblem } from '../protocol/fields.js';

/** Prefix of the library's own temporary files (partial downloads); never shared. */
export const TEMP_PREFIX = '.peerdex-';

/** O_NONBLOCK: a FIFO put in the folder must not block the open (it is then refused). */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** Digests remembered; the oldest are forgotten past this (files come and go). */
const MAX_DIGESTS = 10_000;

export interface SharedFile {
  name: string;
  /** The path opened: the entry itself, or the entry a link inside the folder leads to. */
  path: string;
  size: number;
  mtimeMs: number;
  dev: number;
  ino: number;
}

/** A shared file opened for reading; the caller closes `handle`. */
export interface OpenedFile {
  file: SharedFile;
  handle: FileHandle;
}

export interface ScanResult {
  files: string[];
  /** Names found in the folder that cannot be shared, with the reason. */
  skipped: { name: string; reason: string }[];
  /** Files in subfolders (not shared), counted up to SUBFOLDER_COUNT_LIMIT. */
  inSubfolders: number;
}

/** Files in subfolders are counted to this many at most: enough to say "10000 or more". */
export const SUBFOLDER_COUNT_LIMIT = 10_000;

export interface FileLibraryOptions {
  /**
   * Share only these names (a live set: names added later are shared from then on). A
   * `peer download --seed` shares what it downloaded, not the rest of the folder; a name in
   * this set is shared even if it is hidden (it was asked for by name).
   */
  only?: ReadonlySet<string>;
  /** Share names starting with a dot too. Default false. */
  includeHidden?: boolean;
}

const notFound = (name: string, why = '') => new PeerdexError('ERR_NOT_FOUND', `no file "${name}"${why}`);

export class FileLibrary {
  readonly dir: string;
  readonly #only: ReadonlySet<string> | undefined;
  readonly #includeHidden: boolean;
  /** Digest per `dev:ino`, valid while size and mtime stay the same. */
  readonly #digests = new Map<string, { size: number; mtimeMs: number; digest: Promise<string> }>();
  #realDir: string | undefined;

  constructor(dir: string, options: FileLibraryOptions = {}) {
    this.dir = dir;
    this.#only = options.only;
    this.#includeHidden = options.includeHidden ?? false;
  }

  /** Lists the names in the folder that can be shared (regular files, valid names). */
  async scan(): Promise<ScanResult> {
    const entries = await fg('*', { cwd: this.dir, onlyFiles: true, dot: true, followSymbolicLinks: true, suppressErrors: true });
    const files: string[] = [];
    const skipped: ScanResult['skipped'] = [];
    for (const name of entries.sort()) {
      if (!this.#offered(name)) continue;
      const problem = filenameProblem(name);
      if (problem) skipped.push({ name, reason: problem });
      else files.push(name);
    }
    return { files, skipped, inSubfolders: await this.#countInSubfolders() };
  }

  /** How many (visible) files the subfolders hold, stopping at SUBFOLDER_COUNT_LIMIT. */
  async #countInSubfolders(): Promise<number> {
    let n = 0;
    const stream = fg.stream('*/**', { cwd: this.dir, onlyFiles: true, dot: this.#includeHidden, followSymbolicLinks: false, suppressErrors: true });
    for await (const _ of stream) if (++n >= SUBFOLDER_COUNT_LIMIT) break;
    return n;
  }

  /**
   * Resolves a protocol name to a file (opened and checked, then closed). Throws
   * ERR_INVALID_FIELD for an unsafe name and ERR_NOT_FOUND when there is no such shareable file.
   */
  async resolve(name: string): Promise<SharedFile> {
    const { file, handle } = await this.open(name);
    await handle.close();
    return file;
  }

  /** Opens a shared file for reading (see the file comment); same errors as `resolve`. */
  async open(name: string): Promise<OpenedFile> {
    const problem = filenameProblem(name);
    if (problem) throw new PeerdexError('ERR_INVALID_FIELD', problem);
    if (!this.#offered(name)) throw notFound(name);
    const root = await this.#root();
    const entry = join(root, name);
    const st = await lstat(entry).catch(() => undefined);
    if (st?.isSymbolicLink()) {
      const target = await realpath(entry).catch(() => undefined);
      if (target === undefined || dirname(target) !== root) throw notFound(name, ' inside the shared folder');
      if (!this.#offered(basename(target), true)) throw notFound(name);
      return this.#openEntry(name, target);
    }
    if (!st?.isFile()) throw notFound(name);
    return this.#openEntry(name, entry);
  }

  /**
   * The file's SHA-256 (base64url), computed once per (device, inode, size, mtime), always
   * from an opened descriptor: `handle` if given, else the file is opened again by name and
   * must still be the same one.
   */
  async digest(file: SharedFile, handle?: FileHandle): Promise<string> {
    const key = `${file.dev}:${file.ino}`;
    const hit = this.#digests.get(key);
    if (hit && hit.size === file.size && hit.mtimeMs === file.mtimeMs) return hit.digest;
    const digest = handle ? hashOpened(handle) : this.#hashAgain(file);
    this.#digests.delete(key);
    this.#digests.set(key, { size: file.size, mtimeMs: file.mtimeMs, digest });
    if (this.#digests.size > MAX_DIGESTS) this.#digests.delete(this.#digests.keys().next().value!);
    digest.catch(() => {
      if (this.#digests.get(key)?.digest === digest) this.#digests.delete(key);
    });
    return digest;
  }

  /** Whether a name may be shared at all; `asTarget` for what a link leads to (not in `only`). */
  #offered(name: string, asTarget = false): boolean {
    if (name.startsWith(TEMP_PREFIX)) return false;
    const listed = !asTarget && this.#only?.has(name) === true;
    if (!asTarget && this.#only && !listed) return false;
    return this.#includeHidden || listed || !name.startsWith('.');
  }

  /** Opens `path` without following a link and checks it is the regular file the folder holds. */
  async #openEntry(name: string, path: string): Promise<OpenedFile> {
    let handle: FileHandle;
    try {
      handle = await open(path, OPEN_FLAGS);
    } catch (err) {
      // ELOOP: a link was swapped in since the lstat. Anything else: gone or unreadable.
      throw notFound(name, ` (${(err as NodeJS.ErrnoException).code ?? 'cannot open'})`);
    }
    try {
      const [st, now] = await Promise.all([handle.stat(), lstat(path)]);
      if (!st.isFile() || !now.isFile() || st.dev !== now.dev || st.ino !== now.ino) throw notFound(name, ' (changed while it was opened)');
      return { file: { name, path, size: st.size, mtimeMs: st.mtimeMs, dev: st.dev, ino: st.ino }, handle };
    } catch (err) {
      await handle.close();
      throw err instanceof PeerdexError ? err : notFound(name, ` (${(err as NodeJS.ErrnoException).code ?? 'cannot read'})`);
    }
  }

  async #hashAgain(file: SharedFile): Promise<string> {
    const { file: now, handle } = await this.open(file.name);
    try {
      if (now.dev !== file.dev || now.ino !== file.ino) throw notFound(file.name, ' (replaced while it was being hashed)');
      return await hashOpened(handle);
    } finally {
      await handle.close();
    }
  }

  async #root(): Promise<string> {
    if (this.#realDir === undefined) {
      try {
        this.#realDir = await realpath(this.dir);
      } catch (err) {
        throw new PeerdexError('ERR_FILE', `shared folder ${this.dir} cannot be read: ${(err as Error).message}`, { cause: err });
      }
    }
    return this.#realDir;
  }
}

/** SHA-256 (base64url) of everything an open file holds, read by position (the handle is shared). */
async function hashOpened(handle: FileHandle): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of handle.createReadStream({ start: 0, autoClose: false, highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('base64url');
}
