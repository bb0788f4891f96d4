/**
 * `peer download`: checks the name and the target, then runs a swarm download (every holder
 * at once, verified, see swarm/) and, when asked, registers the result, but only if a content
 * server on this host really serves it: a registration must never point at a port with
 * nothing behind it.
 */
import { access, mkdir, stat, statfs } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { join } from 'node:path';
import { PeerdexError } from '../protocol/errors.js';
import { filenameProblem } from '../protocol/fields.js';
import type { Holder } from '../protocol/index-messages.js';
import { ContentConnection } from './content-client.js';
import { sha256File } from './digest.js';
import type { IndexClient } from './index-client.js';
import { fileError } from './file-errors.js';
import { SwarmDownload, type SwarmEvent, type SwarmProgress } from './swarm/swarm-download.js';
import type { HolderReport } from './swarm/holder-book.js';

export interface DownloadOptions {
  index: IndexClient;
  filename: string;
  dir: string;
  /**
   * Register the verified file under this content port, if a content server on this host's
   * port serves it with the same digest (a `peer serve` of the folder). Undefined: do not.
   */
  registerPort?: number | undefined;
  /** Replace an existing file with different content. */
  overwrite?: boolean;
  /** This peer's own content port: never downloaded from. Default: registerPort. */
  selfPort?: number | undefined;
  /** Holders fetched from at once. Default 8. */
  connections?: number;
  /** Seconds-worth of silence (ms) after which a holder loses its request. Default 10 s. */
  stallTimeoutMs?: number;
  /** How long to keep looking once every holder has failed (ms). Default 30 s. */
  waitMs?: number;
  /** Largest content accepted. Default: the free space of the target folder's disk. */
  maxSize?: number | undefined;
  /** Shared download rate limit. */
  limiter?: { take(n: number): Promise<void> } | undefined;
  signal?: AbortSignal | undefined;
  /** Holder idle timeout used before the swarm options existed; same as stallTimeoutMs. */
  idleTimeoutMs?: number;
  onProgress?: (progress: SwarmProgress) => void;
  onEvent?: (event: DownloadEvent) => void;
}

export type DownloadEvent = SwarmEvent;

export interface DownloadResult {
  filename: string;
  path: string;
  size: number;
  sha256: string;
  /** Holders that sent bytes, in the order they first did. */
  holders: string[];
  /** Bytes kept from an earlier, interrupted run and used (0 when it started from scratch). */
  resumedFrom: number;
  /** True when an identical file was already there. */
  alreadyHad: boolean;
  registered: boolean;
  /** Why the file was not registered although registerPort was given. */
  notShared?: string;
  /** Every holder tried, with what it sent and why it failed. */
  report: HolderReport[];
}

export async function download(options: DownloadOptions): Promise<DownloadResult> {
  const { index, filename, dir } = options;
  const problem = filenameProblem(filename);
  if (problem) throw new PeerdexError('ERR_USAGE', `cannot download "${filename}": ${problem}`);
  await prepareFolder(dir);
  const finalPath = join(dir, filename);

  const existing = await stat(finalPath).catch(() => undefined);
  if (existing && !options.overwrite) {
    if (!existing.isFile()) throw new PeerdexError('ERR_FILE', `${finalPath} exists and is not a regular file`);
    const holder = await index.search(filename);
    const local = await sha256File(finalPath);
    if ((holder.sha256 ?? (await digestAt(holder, filename, existing.size))) !== local) {
      throw new PeerdexError('ERR_FILE', `${finalPath} already exists with other content (use --overwrite to replace it)`);
    }
    const sharing = await registerIfServed(options, local, existing.size);
    return { filename, path: finalPath, size: existing.size, sha256: local, holders: [], resumedFrom: 0, alreadyHad: true, ...sharing, report: [] };
  }

  const limit = options.maxSize === undefined ? await freeSpace(dir) : { bytes: options.maxSize, text: `--max-size ${options.maxSize}` };
  const swarm = new SwarmDownload({
    index,
    filename,
    dir,
    maxSize: limit.bytes,
    describeMaxSize: limit.text,
    selfPort: options.selfPort ?? options.registerPort,
    connections: options.connections ?? 8,
    stallTimeoutMs: options.stallTimeoutMs ?? options.idleTimeoutMs ?? 10_000,
    waitMs: options.waitMs ?? 30_000,
    limiter: options.limiter,
    signal: options.signal,
    onProgress: options.onProgress,
    onEvent: options.onEvent,
  });
  const got = await swarm.run(finalPath);
  const sharing = await registerIfServed(options, got.sha256, got.size);
  return { filename, path: finalPath, size: got.size, sha256: got.sha256, holders: got.holders, resumedFrom: got.resumedFrom, alreadyHad: false, ...sharing, report: got.report };
}

/** The free space of the folder's disk: the default limit on what a download may write. */
async function freeSpace(dir: string): Promise<{ bytes: number; text: string }> {
  try {
    const fs = await statfs(dir);
    const bytes = fs.bavail * fs.bsize;
    return { bytes, text: `the ${bytes} bytes free in ${dir}` };
  } catch {
    return { bytes: Number.MAX_SAFE_INTEGER, text: 'any size' };
  }
}

/**
 * The whole-file digest a holder reports for a file of `size` bytes: asks for the empty range
 * at `size`, which a same-size file answers with just its header.
 */
export async function digestAt(holder: Pick<Holder, 'addr' | 'port'>, filename: string, size: number, timeoutMs = 5000): Promise<string | undefined> {
  const conn = await ContentConnection.open(holder.addr, holder.port, { idleTimeoutMs: timeoutMs }).catch(() => undefined);
  if (!conn) return undefined;
  try {
    const header = await conn.request(filename, size, 0);
    return header.size === 0 ? header.sha256 : undefined;
  } catch {
    return undefined; // a different size (range past the end) or no answer: not the same file
  } finally {
    conn.close();
  }
}

/** Registers only what this host's content server on registerPort really serves. */
async function registerIfServed(options: DownloadOptions, sha256: string, size: number): Promise<{ registered: boolean; notShared?: string }> {
  const port = options.registerPort;
  if (port === undefined) return { registered: false };
  const served = await digestAt({ addr: '127.0.0.1', port }, options.filename, size);
  if (served !== sha256) {
    return {
      registered: false,
      notShared: `not shared: nothing serves ${options.filename} on port ${port} (run peer serve --dir ${options.dir} --port ${port}, or use --seed)`,
    };
  }
  await options.index.register({ port, addr: '', filename: options.filename, sha256 });
  return { registered: true };
}

async function prepareFolder(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, fsConstants.W_OK);
  } catch (err) {
    throw fileError(err, `cannot write to folder ${dir}`);
  }
}
