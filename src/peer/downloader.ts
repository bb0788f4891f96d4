/**
 * `peer download`: find holders through the index, fetch the content into a partial file,
 * resume from another holder when one fails, verify size, packet count and SHA-256, move the
 * file into place, then register it so this peer becomes a holder too.
 */
import { once } from 'node:events';
import { access, mkdir, stat } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { join } from 'node:path';
import { PeerdexError, isPeerdexError } from '../protocol/errors.js';
import { filenameProblem, formatHostPort } from '../protocol/fields.js';
import type { Holder } from '../protocol/index-messages.js';
import { ContentConnection } from './content-client.js';
import { sha256File } from './digest.js';
import type { IndexClient } from './index-client.js';
import { fileError, PartialFile } from './partial-file.js';

export interface DownloadOptions {
  index: IndexClient;
  filename: string;
  dir: string;
  /** Register the file under this content port once it is verified; undefined: do not. */
  registerPort?: number | undefined;
  /** Replace an existing file with different content. */
  overwrite?: boolean;
  /** Holders to try before giving up. Default 8. */
  maxHolders?: number;
  idleTimeoutMs?: number;
  onProgress?: (progress: { received: number; total: number; holder: string }) => void;
  onEvent?: (event: DownloadEvent) => void;
}

export type DownloadEvent =
  | { type: 'holder'; holder: string; resumeFrom: number }
  | { type: 'holder-failed'; holder: string; reason: string };

export interface DownloadResult {
  filename: string;
  path: string;
  size: number;
  sha256: string;
  /** Holders that sent bytes, in order. */
  holders: string[];
  /** Bytes kept from an earlier, interrupted run and used (0 when it started from scratch). */
  resumedFrom: number;
  /** True when an identical file was already there and was only re-registered. */
  alreadyHad: boolean;
  registered: boolean;
}

const holderKey = (h: Holder) => formatHostPort(h.addr, h.port);
const connectTo = (h: Holder, options: DownloadOptions) => ContentConnection.open(h.addr, h.port, { idleTimeoutMs: options.idleTimeoutMs });

export async function download(options: DownloadOptions): Promise<DownloadResult> {
  const { index, filename, dir } = options;
  const problem = filenameProblem(filename);
  if (problem) throw new PeerdexError('ERR_USAGE', `cannot download "${filename}": ${problem}`);
  await prepareFolder(dir);
  const finalPath = join(dir, filename);
  let holder = await index.search(filename);

  const existing = await stat(finalPath).catch(() => undefined);
  if (existing && !options.overwrite) {
    if (!existing.isFile()) throw new PeerdexError('ERR_FILE', `${finalPath} exists and is not a regular file`);
    const local = await sha256File(finalPath);
    if ((holder.sha256 ?? (await digestAtHolder(holder, filename, existing.size, options))) !== local) {
      throw new PeerdexError('ERR_FILE', `${finalPath} already exists with other content (use --overwrite to replace it)`);
    }
    const registered = await registerIfAsked(options, local);
    return { filename, path: finalPath, size: existing.size, sha256: local, holders: [], resumedFrom: 0, alreadyHad: true, registered };
  }

  const partial = new PartialFile(dir, filename);
  const failed = new Set<string>();
  const used: string[] = [];
  let resumedFrom: number | undefined; // where the first holder that answered was asked to start
  let lastError: PeerdexError | undefined;
  const maxHolders = options.maxHolders ?? 8;

  for (let searches = 0; failed.size < maxHolders && searches < maxHolders * 2; searches++) {
    if (searches > 0) {
      holder = await index.search(filename).catch((err: unknown) => {
        throw lastError ?? err;
      });
    }
    const key = holderKey(holder);
    if (failed.has(key)) continue; // round robin brought back one that already failed
    try {
      used.push(key);
      const got = await fetchFrom(holder, partial, options, (offset) => (resumedFrom ??= offset));
      await partial.commit(finalPath);
      const registered = await registerIfAsked(options, got.sha256);
      return { filename, path: finalPath, size: got.size, sha256: got.sha256, holders: used, resumedFrom: resumedFrom ?? 0, alreadyHad: false, registered };
    } catch (err) {
      if (!isPeerdexError(err) || err.code === 'ERR_FILE') {
        // Local trouble (full disk, read-only folder): another holder will not help.
        await partial.discard();
        throw err;
      }
      lastError = err;
      failed.add(key);
      options.onEvent?.({ type: 'holder-failed', holder: key, reason: err.message });
    }
  }
  const kept = (await partial.existing())?.length ?? 0;
  const err = lastError ?? new PeerdexError('ERR_NOT_FOUND', `no holder of "${filename}" could send it`);
  if (kept === 0) throw err;
  throw new PeerdexError(err.code, `${err.message} (${kept} bytes kept: run the same download again to resume)`, { cause: err });
}

/**
 * The whole-file digest a holder reports, for a holder registered without one. Asks for the
 * empty range at `size` (our file's length): a same-size file answers with just its header.
 */
async function digestAtHolder(holder: Holder, filename: string, size: number, options: DownloadOptions): Promise<string | undefined> {
  const conn = await connectTo(holder, options).catch(() => undefined);
  if (!conn) return undefined;
  try {
    return (await conn.request(filename, size, 0)).sha256;
  } catch {
    return undefined; // a different size (range past the end) or no answer: not the same file
  } finally {
    conn.close();
  }
}

/** Fetches the rest of the content from one holder into the partial file and verifies it. */
async function fetchFrom(
  holder: Holder,
  partial: PartialFile,
  options: DownloadOptions,
  onStart: (offset: number) => void,
): Promise<{ size: number; sha256: string }> {
  const label = holderKey(holder);
  let conn = await connectTo(holder, options);
  try {
    let kept = await partial.existing();
    // Bytes kept from other content (the index now lists a different digest) are useless.
    if (kept && holder.sha256 && kept.meta.sha256 !== holder.sha256) {
      await partial.discard();
      kept = undefined;
    }
    let offset = kept?.length ?? 0;
    let header = await conn.request(options.filename, offset, 0);
    if (kept && header.sha256 !== kept.meta.sha256) {
      // This holder has other content under that name: start over with it from byte 0.
      await partial.discard();
      conn.close();
      conn = await connectTo(holder, options);
      offset = 0;
      header = await conn.request(options.filename);
    }
    if (holder.sha256 && header.sha256 !== holder.sha256) {
      throw new PeerdexError('ERR_INTEGRITY', `holder ${label} offers content whose SHA-256 differs from the index's`);
    }
    const total = offset + header.size;
    await partial.writeMeta({ sha256: header.sha256, size: total });
    onStart(offset);
    options.onEvent?.({ type: 'holder', holder: label, resumeFrom: offset });

    const hash = await partial.hashOfKept(offset);
    const sink = partial.openForAppend(offset);
    let sinkError: unknown;
    sink.on('error', (err) => {
      sinkError = err;
      conn.close();
    });
    let received = offset;
    options.onProgress?.({ received, total, holder: label });
    try {
      await conn.receive(sink, (data) => {
        hash.update(data);
        received += data.length;
        options.onProgress?.({ received, total, holder: label });
      });
    } catch (err) {
      if (!sinkError) throw err; // else the write failure below is the real cause
    } finally {
      sink.end();
      // After a write error the stream may have closed already; 'close' would never come again.
      if (!sink.closed) await once(sink, 'close').catch(() => {});
    }
    if (sinkError) throw fileError(sinkError, `cannot write ${partial.partPath}`);

    const digest = hash.digest('base64url');
    if (digest !== header.sha256) {
      await partial.discard();
      throw new PeerdexError('ERR_INTEGRITY', `content from ${label} does not match its SHA-256 (got ${digest}, expected ${header.sha256})`);
    }
    return { size: total, sha256: digest };
  } finally {
    conn.close();
  }
}

async function prepareFolder(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, fsConstants.W_OK);
  } catch (err) {
    throw fileError(err, `cannot write to folder ${dir}`);
  }
}

async function registerIfAsked(options: DownloadOptions, sha256: string): Promise<boolean> {
  if (options.registerPort === undefined) return false;
  await options.index.register({ port: options.registerPort, addr: '', filename: options.filename, sha256 });
  return true;
}
