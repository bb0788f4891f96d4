/**
 * The folder a peer shares. Turns protocol names into files, safely: a name must pass the
 * protocol's filename rules, and the file it names must be a regular file whose real path
 * lies inside the folder (a symlink that leads out is treated as missing).
 */
import { realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import fg from 'fast-glob';
import { PeerdexError } from '../protocol/errors.js';
import { filenameProblem } from '../protocol/fields.js';
import { DigestCache } from './digest.js';

/** Prefix of the library's own temporary files (partial downloads); never shared. */
export const TEMP_PREFIX = '.peerdex-';

export interface SharedFile {
  name: string;
  path: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

export interface ScanResult {
  files: string[];
  /** Names found in the folder that cannot be shared, with the reason. */
  skipped: { name: string; reason: string }[];
}

export interface FileLibraryOptions {
  /**
   * Share only these names (a live set: names added later are shared from then on). A
   * `peer download --seed` shares what it downloaded, not the rest of the folder.
   */
  only?: ReadonlySet<string>;
}

export class FileLibrary {
  readonly dir: string;
  readonly #only: ReadonlySet<string> | undefined;
  readonly #digests = new DigestCache();
  #realDir: string | undefined;

  constructor(dir: string, options: FileLibraryOptions = {}) {
    this.dir = dir;
    this.#only = options.only;
  }

  /** Lists the names in the folder that can be shared (regular files, valid names). */
  async scan(): Promise<ScanResult> {
    const entries = await fg('*', { cwd: this.dir, onlyFiles: true, dot: true, followSymbolicLinks: true, suppressErrors: true });
    const files: string[] = [];
    const skipped: ScanResult['skipped'] = [];
    for (const name of entries.sort()) {
      if (name.startsWith(TEMP_PREFIX) || (this.#only && !this.#only.has(name))) continue;
      const problem = filenameProblem(name);
      if (problem) skipped.push({ name, reason: problem });
      else files.push(name);
    }
    return { files, skipped };
  }

  /**
   * Resolves a protocol name to a file. Throws ERR_INVALID_FIELD for an unsafe name and
   * ERR_NOT_FOUND when there is no such shareable file.
   */
  async resolve(name: string): Promise<SharedFile> {
    const problem = filenameProblem(name);
    if (problem) throw new PeerdexError('ERR_INVALID_FIELD', problem);
    if (name.startsWith(TEMP_PREFIX) || (this.#only && !this.#only.has(name))) throw new PeerdexError('ERR_NOT_FOUND', `no file "${name}"`);
    const root = await this.#root();
    let real: string;
    try {
      real = await realpath(join(root, name));
    } catch {
      throw new PeerdexError('ERR_NOT_FOUND', `no file "${name}"`);
    }
    if (!real.startsWith(root + sep)) throw new PeerdexError('ERR_NOT_FOUND', `no file "${name}" inside the shared folder`);
    const st = await stat(real).catch(() => undefined);
    if (!st?.isFile()) throw new PeerdexError('ERR_NOT_FOUND', `no file "${name}"`);
    return { name, path: real, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
  }

  /** The file's SHA-256 (base64url), computed once per (size, mtime, inode). */
  digest(file: SharedFile): Promise<string> {
    return this.#digests.get(file.path, file);
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
