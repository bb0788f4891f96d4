/** `peer serve`: one Peer (content server, registrations, downloads) on the command line. */
import { stat } from 'node:fs/promises';
import { PeerdexError } from '../protocol/errors.js';
import { formatHostPort } from '../protocol/fields.js';
import type { ContentServerEvent } from '../peer/content-server.js';
import { Peer, type PeerEvent } from '../peer/peer.js';
import { RateLimiter } from '../peer/rate-limiter.js';
import type { SeederEvent } from '../peer/seeder.js';
import { checkPort, checkRate, formatBytes, indexClientFrom, type IndexArgs } from './common.js';
import { escapeForTerminal, timestamp } from './output.js';
import { untilStopSignal } from './process-guards.js';

export interface ServeArgs extends IndexArgs {
  dir: string;
  port: number;
  host: string;
  refresh: number;
  rescan: number;
  idleTimeout: number;
  maxConnections: number;
  maxConnectionsPerSource: number;
  includeHidden: boolean;
  /** Bytes per second as typed (`500k`, `10M`); absent means no cap. */
  maxUploadRate?: string | undefined;
  quiet: boolean;
}

export const log = (line: string) => process.stdout.write(`${timestamp()} ${line}\n`);

function describeSeeder(e: SeederEvent): string {
  switch (e.type) {
    case 'registered':
      return `registered "${escapeForTerminal(e.name)}" (${formatBytes(e.size)}, sha256 ${e.sha256})`;
    case 'deregistered':
      return `deregistered "${escapeForTerminal(e.name)}"`;
    case 'skipped':
      return `warning: not sharing "${escapeForTerminal(e.name)}": ${e.reason}`;
    case 'index-error':
      return `warning: ${escapeForTerminal(e.message)}`;
    case 'index-ok':
      return 'index answers again';
  }
}

function describeServer(e: ContentServerEvent): string {
  switch (e.type) {
    case 'served':
      return `sent "${escapeForTerminal(e.name)}" (${formatBytes(e.bytes)}${e.offset > 0 ? ` from byte ${e.offset}` : ''}) to ${e.remote}`;
    case 'refused':
      return `refused a request from ${e.remote}: E ${e.code} ${escapeForTerminal(e.reason)}`;
    case 'aborted':
      return `transfer to ${e.remote} stopped: ${escapeForTerminal(e.reason)}`;
  }
}

/** The log line for a peer event, or undefined for events not logged (`quiet` keeps warnings). */
export function describePeerEvent(e: PeerEvent, quiet: boolean): string | undefined {
  if (e.type === 'server') return quiet ? undefined : describeServer(e.event);
  if (e.type === 'seeder') return quiet && e.event.type !== 'skipped' && e.event.type !== 'index-error' ? undefined : describeSeeder(e.event);
  if (e.type === 'download-failed') return `download of "${escapeForTerminal(e.name)}" failed: ${escapeForTerminal(e.error.message)}`;
  if (quiet) return undefined;
  if (e.type === 'download-started') return `downloading "${escapeForTerminal(e.name)}"`;
  if (e.type === 'download-done') return `downloaded "${escapeForTerminal(e.name)}" (${formatBytes(e.result.size)}) from ${e.result.holders.length} holder(s)`;
  return undefined;
}

export interface PeerArgs extends IndexArgs {
  dir: string;
  port: number;
  host: string;
  idleTimeout: number;
  maxConnections: number;
  maxConnectionsPerSource: number;
  includeHidden: boolean;
  maxUploadRate?: string | undefined;
  refresh: number;
  rescan: number;
}

/** Checks the options a running peer takes and starts listening. */
export async function listenPeer(args: PeerArgs, downloadsOnly: boolean): Promise<{ peer: Peer; close: () => Promise<void>; uploadRate: number | undefined }> {
  const index = indexClientFrom(args);
  const port = checkPort(args.port, 'port', true);
  if (!(args.refresh > 0 && args.rescan > 0)) throw new PeerdexError('ERR_USAGE', '--refresh and --rescan must be positive numbers of seconds');
  if (!(args.idleTimeout > 0 && args.idleTimeout <= 86_400)) throw new PeerdexError('ERR_USAGE', `--idle-timeout must be 0 < seconds <= 86400, got ${args.idleTimeout}`);
  for (const [flag, n] of [['max-connections', args.maxConnections], ['max-connections-per-source', args.maxConnectionsPerSource]] as const) {
    if (!(Number.isInteger(n) && n >= 1)) throw new PeerdexError('ERR_USAGE', `--${flag} must be a whole number >= 1, got ${n}`);
  }
  const uploadRate = checkRate(args.maxUploadRate, 'max-upload-rate');
  // One limiter for every connection: the cap is on the whole peer, not per downloader.
  const uploadLimiter = uploadRate === undefined ? undefined : new RateLimiter({ bytesPerSecond: uploadRate });
  const peer = await Peer.listen({
    dir: args.dir,
    index,
    port,
    host: args.host,
    idleTimeoutMs: args.idleTimeout * 1000,
    maxConnections: args.maxConnections,
    maxConnectionsPerSource: args.maxConnectionsPerSource,
    includeHidden: args.includeHidden,
    uploadLimiter,
    refreshMs: args.refresh * 1000,
    rescanMs: args.rescan * 1000,
    downloadsOnly,
  });
  const close = async () => {
    await peer.close();
    await uploadLimiter?.close();
  };
  return { peer, close, uploadRate };
}

export async function serveCommand(args: ServeArgs): Promise<void> {
  const st = await stat(args.dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new PeerdexError('ERR_USAGE', `--dir ${args.dir} is not a folder`);
  // Handle signals from the start: a script may stop us as soon as it reads the port line.
  let registered: (() => number) | undefined;
  const stopped = untilStopSignal((signal) => {
    const what = registered ? `deregistering ${registered()} file(s) and closing` : 'stopping';
    log(`${signal}: ${what} (press Ctrl-C again to quit at once)`);
  });
  const { peer, close, uploadRate } = await listenPeer(args, false);
  peer.on('event', (e) => {
    const line = describePeerEvent(e, args.quiet);
    if (line !== undefined) log(line);
  });
  const cap = uploadRate === undefined ? '' : `, uploads capped at ${formatBytes(uploadRate)}/s`;
  log(`serving ${args.dir} on tcp ${formatHostPort(args.host, peer.port)}, index ${peer.index.label}${cap}`);
  // A stop during start-up (an index that does not answer) must not wait for it.
  const started = await Promise.race([peer.start().then(() => true), stopped.then(() => false)]);
  if (started) {
    log(`${peer.seeder.names.length} file(s) registered for tcp port ${peer.port}; refreshing every ${args.refresh} s (Ctrl-C to stop)`);
    registered = () => peer.seeder.names.length;
  }
  await stopped;
  await close();
  // Registrations still being retried from start-up must not keep the process alive: what
  // they did is taken back or expires with the index's TTL.
  setImmediate(() => process.exit()).unref();
}
