/** The log of a running peer: one line per event, as text for people or fields for machines. */
import type { ContentServerEvent } from '../peer/content-server.js';
import type { PeerEvent } from '../peer/peer.js';
import { SUBFOLDER_COUNT_LIMIT } from '../peer/file-library.js';
import type { SeederEvent } from '../peer/seeder.js';
import { isPeerdexError } from '../protocol/errors.js';
import type { DownloadEvent } from '../peer/downloader.js';
import { formatBytes, sha256Hex, showSha256 } from './common.js';
import type { LogLevel } from './log-format.js';
import { escapeForTerminal } from './output.js';

/** How the log is written: `quiet` keeps warnings and errors, `verbose` adds what each holder did in downloads, `hex` shows digests in hex. */
export interface LogOptions {
  quiet: boolean;
  verbose?: boolean;
  hex?: boolean;
}

function describeSeeder(e: SeederEvent, hex: boolean): string {
  switch (e.type) {
    case 'registered':
      return `registered "${escapeForTerminal(e.name)}" (${formatBytes(e.size)}, sha256 ${showSha256(e.sha256, hex)})`;
    case 'deregistered':
      return `deregistered "${escapeForTerminal(e.name)}"`;
    case 'skipped':
      return `warning: not sharing "${escapeForTerminal(e.name)}": ${e.reason}`;
    case 'index-error':
      return `warning: ${escapeForTerminal(e.message)}`;
    case 'index-ok':
      return 'index answers again';
    case 'settling':
      return `"${escapeForTerminal(e.name)}" is being written; it is registered once it has not changed for a moment`;
    case 'subfolders': {
      const count = e.count >= SUBFOLDER_COUNT_LIMIT ? `${SUBFOLDER_COUNT_LIMIT} or more` : String(e.count);
      return `warning: ${count} file(s) in subfolders are not shared (only the folder's own files are)`;
    }
  }
}

/**
 * By default one line per downloader connection, when it ends, for what it was sent (`sent
 * "a.bin" (37 MiB in 36 ranges) to ...`): a swarm downloader asks for many ranges, and one
 * line per range drowned the log. A connection that got nothing whole and was closed by its
 * downloader (a swarm's size probe, or a piece another holder sent first), or only an empty
 * range (a check that the file is there), is routine and not logged. --verbose logs every
 * range and every stop as it happens.
 */
function describeServer(e: ContentServerEvent, verbose: boolean): string | undefined {
  switch (e.type) {
    case 'served':
      return verbose ? `sent "${escapeForTerminal(e.name)}" (${formatBytes(e.bytes)}${e.offset > 0 ? ` from byte ${e.offset}` : ''}) to ${e.remote}` : undefined;
    case 'refused':
      return `refused a request from ${e.remote}: ${escapeForTerminal(e.reason)}`;
    case 'aborted':
      return verbose ? `transfer to ${e.remote} stopped: ${escapeForTerminal(e.reason)}` : undefined;
    case 'connection-done': {
      if (verbose) return undefined; // each range was logged already
      // Zero bytes: a check that the file is there with that digest (`D NAME;size;0`).
      // A transfer cut before anything whole was sent is the downloader's doing (a size probe,
      // a piece another holder sent first; the reset can show as EPIPE or ECONNRESET): only
      // --verbose shows it.
      const files = e.files.filter((f) => f.bytes > 0);
      if (files.length === 0) return undefined;
      const parts = files.map((f) => {
        const what = `${formatBytes(f.bytes)}${f.ranges > 1 ? ` in ${f.ranges} ranges` : ''}`;
        return `"${escapeForTerminal(f.name)}" (${what}${f.stopped !== undefined ? `; stopped: ${escapeForTerminal(f.stopped)}` : ''})`;
      });
      return `sent ${parts.join(', ')} to ${e.remote}`;
    }
    default:
      return undefined;
  }
}

/** The log line for a peer event, or undefined for events not logged. */
export function describePeerEvent(e: PeerEvent, options: LogOptions): string | undefined {
  const { quiet, verbose = false, hex = false } = options;
  if (e.type === 'server') return quiet ? undefined : describeServer(e.event, verbose);
  if (e.type === 'seeder') return quiet && !isWarning(e.event) ? undefined : describeSeeder(e.event, hex);
  if (e.type === 'download-failed') return `download of "${escapeForTerminal(e.name)}" failed: ${escapeForTerminal(e.error.message)}`;
  if (quiet) return undefined;
  if (e.type === 'download-started') return `downloading "${escapeForTerminal(e.name)}"`;
  if (e.type === 'download-done') {
    return `downloaded "${escapeForTerminal(e.name)}" (${formatBytes(e.result.size)}, sha256 ${showSha256(e.result.sha256, hex)}) from ${e.result.holders.length} holder(s)`;
  }
  if (e.type === 'download-event' && verbose) {
    const detail = describeDownloadEvent(e.event);
    return detail && `${escapeForTerminal(e.name)}: ${escapeForTerminal(detail)}`;
  }
  return undefined;
}

/** What a download's holders did, for --verbose. */
function describeDownloadEvent(e: DownloadEvent): string | undefined {
  switch (e.type) {
    case 'holder':
      return `holder ${e.holder} is sending${e.resumeFrom > 0 ? ` (resuming at ${formatBytes(e.resumeFrom)})` : ''}`;
    case 'holder-failed':
      return `holder ${e.holder} failed (it is tried again after a rest): ${e.reason}`;
    case 'holder-banned':
      return `holder ${e.holder} dropped: ${e.reason}`;
    case 'waiting':
      return `no holder can send it now; looking again (${e.seconds} s left)`;
    case 'repaired':
      return `${e.pieces} piece(s) from ${e.liar} did not match and were fetched again`;
    case 'contents':
      return `the index lists ${e.others.length + 1} different contents under this name; fetching the one ${e.resumed ? 'the kept partial data belongs to' : 'most holders have'}`;
  }
}

const isWarning = (e: SeederEvent): boolean => e.type === 'skipped' || e.type === 'index-error' || e.type === 'subfolders';

export function peerEventLevel(e: PeerEvent): LogLevel {
  if (e.type === 'seeder' && isWarning(e.event)) return 'warn';
  if (e.type === 'download-failed') return isPeerdexError(e.error) && e.error.code === 'ERR_CANCELLED' ? 'info' : 'error';
  return 'info';
}

/** The event's fields for a JSON log line: `event` names it; names stay as they are (JSON escapes them). */
export function peerEventFields(e: PeerEvent): Record<string, unknown> {
  switch (e.type) {
    case 'server':
    case 'seeder': {
      const { type, ...rest } = e.event;
      return { event: type, ...rest, ...('sha256' in rest ? { sha256Hex: sha256Hex(rest.sha256) } : {}) };
    }
    case 'download-done': {
      const { size, sha256, holders, resumedFrom, registered } = e.result;
      return { event: e.type, id: e.id, name: e.name, size, sha256, sha256Hex: sha256Hex(sha256), holders, resumedFrom, registered };
    }
    case 'download-failed':
      return { event: e.type, id: e.id, name: e.name, error: e.error.message, code: isPeerdexError(e.error) ? e.error.code : undefined };
    case 'download-started':
      return { event: e.type, id: e.id, name: e.name };
    default:
      return { event: e.type, id: e.id, name: e.name };
  }
}
