/**
 * A swarm download on disk: `.peerdex-NAME.part` written at piece offsets (a sparse file of
 * the final size), and `.peerdex-NAME.meta` beside it naming the content (whole-file SHA-256
 * and size) and the piece map, so an interrupted download resumes exactly what is missing.
 * The meta file is replaced atomically (write, then rename), never left half-written.
 *
 * A meta file of the first format ({sha256, size}, bytes kept as a prefix) still resumes: its
 * whole pieces count as done.
 */
import { open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { fileError } from '../file-errors.js';
import { TEMP_PREFIX } from '../file-library.js';
import { PieceMap, type PieceMapJson } from './piece-map.js';

export interface StoredMeta {
  sha256: string;
  size: number;
}

/** Paths of a download's temporary files (all start with the library's TEMP_PREFIX). */
export function tempPaths(dir: string, name: string) {
  const base = join(dir, `${TEMP_PREFIX}${name}`);
  return { part: `${base}.part`, meta: `${base}.meta`, alt: `${base}.alt` };
}

/** What an earlier run left: the content it belongs to and the pieces done, or nothing usable. */
export async function loadKept(dir: string, name: string): Promise<{ meta: StoredMeta; map: PieceMap } | undefined> {
  const paths = tempPaths(dir, name);
  const st = await stat(paths.part).catch(() => undefined);
  if (!st?.isFile()) return undefined;
  const json = await readFile(paths.meta, 'utf8')
    .then((t) => JSON.parse(t) as Partial<StoredMeta & PieceMapJson>)
    .catch(() => undefined);
  if (!json || typeof json.sha256 !== 'string' || !Number.isSafeInteger(json.size) || json.size! < 0 || st.size > json.size!) return undefined;
  const meta = { sha256: json.sha256, size: json.size! };
  const map = json.pieceSize === undefined ? PieceMap.fromPrefix(meta.size, st.size) : PieceMap.fromJson(meta.size, json as PieceMapJson);
  return map ? { meta, map } : undefined;
}

export async function discardKept(dir: string, name: string): Promise<void> {
  const paths = tempPaths(dir, name);
  await Promise.all([paths.part, paths.meta, `${paths.meta}.tmp`, paths.alt].map((p) => rm(p, { force: true })));
}

export class PieceStore {
  readonly paths: ReturnType<typeof tempPaths>;
  readonly meta: StoredMeta;
  readonly map: PieceMap;
  readonly #handle: FileHandle;
  #alt: FileHandle | undefined;
  #saving: Promise<void> = Promise.resolve();
  #saveTimer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(paths: ReturnType<typeof tempPaths>, meta: StoredMeta, map: PieceMap, handle: FileHandle) {
    this.paths = paths;
    this.meta = meta;
    this.map = map;
    this.#handle = handle;
  }

  /** Opens (resuming when `map` has done pieces, else creating) the part file and saves the meta. */
  static async open(dir: string, name: string, meta: StoredMeta, map: PieceMap): Promise<PieceStore> {
    const paths = tempPaths(dir, name);
    let handle: FileHandle;
    try {
      handle = await open(paths.part, map.doneCount > 0 ? 'r+' : 'w+');
      await handle.truncate(meta.size);
    } catch (err) {
      throw fileError(err, `cannot write ${paths.part}`);
    }
    const store = new PieceStore(paths, meta, map, handle);
    await store.saveNow();
    return store;
  }

  /** Writes `data` at `position` of the part file. */
  async write(data: Buffer | Buffer[], position: number): Promise<void> {
    try {
      if (!Array.isArray(data)) return await writeAll(this.#handle, data, position);
      const total = data.reduce((n, b) => n + b.length, 0);
      const { bytesWritten } = await this.#handle.writev(data, position);
      // A short writev (rare on regular files) is finished from a copy of what is left.
      if (bytesWritten < total) await writeAll(this.#handle, Buffer.concat(data).subarray(bytesWritten), position + bytesWritten);
    } catch (err) {
      throw fileError(err, `cannot write ${this.paths.part}`);
    }
  }

  /**
   * Reads piece `i` from the part file (or the alternative-version file), into `into` when
   * given (a reader going through every piece reuses one buffer instead of making garbage).
   */
  async readPiece(i: number, from: 'part' | 'alt' = 'part', into?: Buffer): Promise<Buffer> {
    const { offset, length } = this.map.range(i);
    const handle = from === 'part' ? this.#handle : await this.#altHandle();
    const buf = into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    for (let got = 0; got < length;) {
      const { bytesRead } = await handle.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) throw fileError(Object.assign(new Error('file shrank'), { code: 'EIO' }), `cannot read ${this.paths.part}`);
      got += bytesRead;
    }
    return buf;
  }

  /** Keeps another holder's version of piece `i` aside, at the same offset of the .alt file. */
  async writeAlt(i: number, data: Buffer): Promise<void> {
    try {
      await writeAll(await this.#altHandle(), data, this.map.range(i).offset);
    } catch (err) {
      throw fileError(err, `cannot write ${this.paths.alt}`);
    }
  }

  /** Saves the piece map soon (at most once a second). */
  saveSoon(): void {
    this.#saveTimer ??= setTimeout(() => {
      this.#saveTimer = undefined;
      void this.saveNow().catch(() => {}); // the next save or close reports a persistent failure
    }, 1000).unref();
  }

  saveNow(): Promise<void> {
    clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    const text = JSON.stringify({ version: 2, ...this.meta, ...this.map.toJson() });
    this.#saving = this.#saving
      .catch(() => {})
      .then(async () => {
        try {
          await writeFile(`${this.paths.meta}.tmp`, text);
          await rename(`${this.paths.meta}.tmp`, this.paths.meta);
        } catch (err) {
          throw fileError(err, `cannot write ${this.paths.meta}`);
        }
      });
    return this.#saving;
  }

  /** Saves the map and closes the files, keeping them for a later run. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.saveNow().catch(() => {});
    await this.#handle.close().catch(() => {});
    await this.#alt?.close().catch(() => {});
    await rm(this.paths.alt, { force: true });
  }

  /** Moves the verified file to `finalPath` and removes the temporary files. */
  async commit(finalPath: string): Promise<void> {
    await this.close();
    try {
      await rename(this.paths.part, finalPath);
    } catch (err) {
      throw fileError(err, `cannot move the download into place as ${finalPath}`);
    }
    await rm(this.paths.meta, { force: true });
  }

  async #altHandle(): Promise<FileHandle> {
    this.#alt ??= await open(this.paths.alt, 'w+');
    return this.#alt;
  }
}

async function writeAll(handle: FileHandle, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length;) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
