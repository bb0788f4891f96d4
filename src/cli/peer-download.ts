/**
 * `peer download NAME... | --match GLOB`: swarm downloads, `--jobs` at a time, verified, kept,
 * and shared: registered where this host's content server serves them, or with `--seed`
 * served and registered by this process until Ctrl-C.
 */
import PQueue from 'p-queue';
import picomatch from 'picomatch';
import { PeerdexError, isPeerdexError } from '../protocol/errors.js';
import { download, type DownloadOptions, type DownloadResult } from '../peer/downloader.js';
import type { IndexClient } from '../peer/index-client.js';
import type { Peer, PeerEvent } from '../peer/peer.js';
import { RateLimiter } from '../peer/rate-limiter.js';
import { tempPaths } from '../peer/swarm/piece-store.js';
import { checkPort, checkRate, checkSize, formatBytes, indexClientFrom, printJson, sha256Hex, showSha256 } from './common.js';
import { DownloadDisplay } from './download-display.js';
import { escapeForTerminal } from './output.js';
import { untilStopSignal } from './process-guards.js';
import { describePeerEvent, listenPeer, log, refreshWarning, type PeerArgs } from './peer-serve.js';

export interface DownloadArgs extends PeerArgs {
  names: string[];
  match?: string | undefined;
  register: boolean;
  overwrite: boolean;
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  progress: boolean | undefined;
  connections: number;
  /** ms */
  stallTimeout: number;
  /** ms */
  wait: number;
  maxSize?: string | number | undefined;
  maxDownloadRate?: string | number | undefined;
  jobs: number;
  seed: boolean;
}

interface Failure {
  name: string;
  error: Error;
}

export async function downloadCommand(args: DownloadArgs): Promise<void> {
  const index = indexClientFrom(args);
  const port = checkPort(args.port, 'port', args.seed);
  const common: Partial<DownloadOptions> = {
    connections: args.connections,
    stallTimeoutMs: args.stallTimeout,
    waitMs: args.wait,
    maxSize: checkSize(args.maxSize, 'max-size'),
    overwrite: args.overwrite,
  };
  const jobs = args.jobs;
  const rate = checkRate(args.maxDownloadRate, 'max-download-rate');
  const names = await namesToFetch(args, index);

  const stopped = new AbortController();
  const limiter = rate === undefined ? undefined : new RateLimiter({ bytesPerSecond: rate });
  const signalled = untilStopSignal(() => {
    stopped.abort();
    // Writes waiting for the rate limit would otherwise wait out their turn (its timers do
    // not keep the process alive, so the command would end with nothing said).
    void limiter?.close();
  });
  const seeding = args.seed ? await listenPeer(args, true) : undefined;
  const slow = args.seed ? refreshWarning(args.refresh) : undefined;
  if (slow) process.stderr.write(`peer: warning: ${slow}\n`);
  const quiet = args.quiet && !args.verbose;
  const bars = args.progress ?? (process.stdout.isTTY === true && !args.json && !quiet);
  const display = new DownloadDisplay({ bars, verbose: args.verbose, plain: !args.json && !quiet && args.progress !== false, hex: args.hex });
  seeding?.peer.on('event', (e) => {
    if (e.type === 'seeder' || e.type === 'server') {
      const line = describePeerEvent(e, { quiet: !args.verbose, hex: args.hex });
      if (line !== undefined) display.line(line);
    }
  });

  const results: (DownloadResult & { notes: string[] })[] = [];
  const failures: Failure[] = [];
  const queue = new PQueue({ concurrency: jobs });
  try {
    await Promise.all(
      names.map((name) =>
        queue.add(async () => {
          if (stopped.signal.aborted) return failures.push({ name, error: cancelled(name) });
          display.started(name);
          try {
            const result = await fetchOne(name, { ...common, limiter, signal: stopped.signal }, args, index, port, seeding?.peer, display);
            const notes = display.finished(name);
            results.push({ ...result, notes });
            if (!args.json && !quiet) {
              // With --verbose the notes were shown as they happened.
              if (!args.verbose) for (const note of notes) display.line(`${escapeForTerminal(name)}: ${escapeForTerminal(note)}`);
              display.line(describeResult(result, args, index.label, seeding?.peer.port ?? port));
            }
          } catch (err) {
            const notes = display.finished(name);
            if (!args.json && !args.verbose && !quiet) for (const note of notes) display.line(`${escapeForTerminal(name)}: ${escapeForTerminal(note)}`);
            failures.push({ name, error: err as Error });
          }
        }),
      ),
    );
  } finally {
    display.stop();
    await limiter?.close();
  }

  if (stopped.signal.aborted) {
    await seeding?.close();
    return reportStop(args, results, failures, await signalled);
  }
  report(args, names, results, failures);
  if (seeding && results.length > 0 && !stopped.signal.aborted) {
    // stdout holds the one JSON document already: say it on stderr.
    if (args.json) process.stderr.write(`peer: seeding ${results.length} file(s) on tcp port ${seeding.peer.port} (Ctrl-C to stop)\n`);
    else log(`seeding ${results.length} file(s) on tcp port ${seeding.peer.port}, index ${index.label} (Ctrl-C to stop)`);
    const sig = await signalled;
    if (!args.json) log(`${sig}: deregistering ${seeding.peer.seeder.names.length} file(s) and closing`);
  }
  await seeding?.close();
}

async function fetchOne(
  name: string,
  options: Partial<DownloadOptions>,
  args: DownloadArgs,
  index: IndexClient,
  port: number,
  peer: Peer | undefined,
  display: DownloadDisplay,
): Promise<DownloadResult> {
  const onProgress = (p: Parameters<NonNullable<DownloadOptions['onProgress']>>[0]) => display.progress(name, p);
  const onEvent = (e: Parameters<NonNullable<DownloadOptions['onEvent']>>[0]) => display.event(name, e);
  if (peer) {
    const off = listenTo(peer, name, onProgress, onEvent);
    try {
      return await peer.download(name, options);
    } finally {
      off();
    }
  }
  return download({ ...options, index, filename: name, dir: args.dir, registerPort: args.register ? port : undefined, selfPort: port, onProgress, onEvent });
}

/** Routes a peer's events for one download name to the display; returns the unsubscribe. */
function listenTo(peer: Peer, name: string, onProgress: NonNullable<DownloadOptions['onProgress']>, onEvent: NonNullable<DownloadOptions['onEvent']>): () => void {
  const on = (e: PeerEvent) => {
    if (e.type === 'download-progress' && e.name === name) onProgress(e.progress);
    if (e.type === 'download-event' && e.name === name) onEvent(e.event);
  };
  peer.on('event', on);
  return () => peer.off('event', on);
}

/** The names asked for, plus those of the index's listing that match --match. */
async function namesToFetch(args: DownloadArgs, index: IndexClient): Promise<string[]> {
  const names = new Set(args.names.map(String));
  if (args.match !== undefined) {
    const matches = picomatch(args.match, { dot: true });
    const listed = (await index.list()).flatMap((s) => s.names).filter((n) => matches(n));
    if (listed.length === 0 && names.size === 0) throw new PeerdexError('ERR_NOT_FOUND', `no name in index ${index.label} matches "${args.match}"`);
    for (const n of listed.sort()) names.add(n);
  }
  if (names.size === 0)
    throw new PeerdexError('ERR_USAGE', "name a file to download: peer download NAME, for example: peer download hello.txt (or --match '*.iso' for every name that matches)");
  return [...names];
}

function describeResult(r: DownloadResult, args: DownloadArgs, indexLabel: string, port: number): string {
  const name = escapeForTerminal(r.filename);
  const from = r.holders.length === 1 ? `from ${r.holders[0]}` : `from ${r.holders.length} holders (${r.holders.join(', ')})`;
  const lines = [
    r.alreadyHad
      ? `"${name}" is already in ${args.dir} with the same content`
      : `downloaded "${name}" (${formatBytes(r.size)}, sha256 ${showSha256(r.sha256, args.hex)} verified) ${from} to ${r.path}`,
  ];
  if (args.verbose) {
    for (const h of r.report) lines.push(`  ${h.holder}: sent ${formatBytes(h.bytes)}${h.state === 'ok' ? '' : ` (${h.state}: ${h.reason ?? ''})`}`);
  }
  if (r.registered) lines.push(args.seed ? `serving and registered "${name}" at content port ${port}` : `registered "${name}" with index ${indexLabel} at content port ${port}`);
  else if (r.notShared) lines.push(escapeForTerminal(r.notShared));
  return lines.join('\n');
}

/** A failed download in --json: always the same fields (holders and kept bytes may be empty). */
function jsonError(err: Error): Record<string, unknown> {
  return { code: isPeerdexError(err) ? err.code : 'ERR_INTERNAL', message: err.message, holders: [], keptBytes: 0, ...(isPeerdexError(err) && err.details ? err.details : {}) };
}

/** A result for --json: the digest in base64url (`sha256`) and in hex (`sha256Hex`). */
const withHex = (r: DownloadResult) => ({ ...r, sha256Hex: sha256Hex(r.sha256) });

/** Prints the outcome; a failure becomes the command's error (exit 1). */
function report(args: DownloadArgs, names: string[], results: DownloadResult[], failures: Failure[]): void {
  const single = names.length === 1 && args.match === undefined;
  if (args.json) {
    if (single && results[0]) printJson(withHex(results[0]));
    else if (single) printJson({ error: jsonError(failures[0].error) });
    else printJson({ downloads: results.map(withHex), failed: failures.map((f) => ({ name: f.name, error: jsonError(f.error) })) });
    if (failures.length > 0) process.exitCode = 1;
    return;
  }
  if (args.verbose) for (const f of failures) printHolders(f);
  if (failures.length === 0) return;
  if (single) throw failures[0].error;
  const list = failures.map((f) => `"${f.name}" (${f.error.message})`).join('; ');
  throw new PeerdexError('ERR_NOT_FOUND', `${failures.length} of ${names.length} downloads failed: ${list}`);
}

function printHolders(f: Failure): void {
  const holders = isPeerdexError(f.error) ? (f.error.details?.['holders'] as { holder: string; state: string; reason?: string }[] | undefined) : undefined;
  for (const h of holders ?? []) process.stderr.write(`peer: ${escapeForTerminal(f.name)}: holder ${h.holder} ${h.state}${h.reason ? `: ${escapeForTerminal(h.reason)}` : ''}\n`);
}

const cancelled = (name: string) => new PeerdexError('ERR_CANCELLED', `download of "${name}" stopped before it started`);

/** Ctrl-C: say what was kept and how to resume; exit 130 (SIGINT) or 143 (SIGTERM), as is usual. */
function reportStop(args: DownloadArgs, results: DownloadResult[], failures: Failure[], signal: NodeJS.Signals): void {
  const stoppedNames = failures.filter((f) => isPeerdexError(f.error) && f.error.code === 'ERR_CANCELLED').map((f) => f.name);
  if (args.json) printJson({ stopped: true, downloads: results.map(withHex), failed: failures.map((f) => ({ name: f.name, error: jsonError(f.error) })) });
  else {
    for (const f of failures) {
      const kept = isPeerdexError(f.error) ? f.error.details?.['keptBytes'] : undefined;
      const where = tempPaths(args.dir, f.name).part;
      if (typeof kept === 'number')
        process.stderr.write(`peer: stopped "${escapeForTerminal(f.name)}": ${formatBytes(kept)} kept in ${escapeForTerminal(where)}; run the same command again to resume\n`);
      else if (isPeerdexError(f.error) && f.error.code === 'ERR_CANCELLED')
        process.stderr.write(`peer: stopped "${escapeForTerminal(f.name)}" before any piece was complete; nothing was kept\n`);
      else process.stderr.write(`peer: "${escapeForTerminal(f.name)}" failed: ${escapeForTerminal(f.error.message)}\n`);
    }
    if (stoppedNames.length === 0 && failures.length === 0) process.stderr.write('peer: stopped\n');
  }
  process.exitCode = signal === 'SIGTERM' ? 143 : 130;
}
