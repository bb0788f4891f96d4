/** `peer serve`: one Peer (content server, registrations, downloads) on the command line. */
import { stat } from 'node:fs/promises';
import { PeerHttpServer } from '../http/peer-http.js';
import { httpSafetyProblem, parseListenAddress } from '../http/http-util.js';
import { PeerdexError } from '../protocol/errors.js';
import { formatHostPort } from '../protocol/fields.js';
import { Peer } from '../peer/peer.js';
import { RateLimiter } from '../peer/rate-limiter.js';
import { checkPort, checkRate, formatBytes, formatDuration, indexClientFrom, type IndexArgs } from './common.js';
import { eventLogger, type LogFormat } from './log-format.js';
import { timestamp } from './output.js';
import { describePeerEvent, peerEventFields, peerEventLevel } from './peer-log.js';
import { untilStopSignal } from './process-guards.js';

export interface ServeArgs extends PeerArgs {
  quiet: boolean;
  verbose: boolean;
  /** Log JSON lines (like --log-format json); errors as JSON. */
  json: boolean;
  /** `[HOST:]PORT` of the page, API and metrics; absent: no HTTP. */
  http?: string | undefined;
  httpToken?: string | undefined;
  logFormat: LogFormat;
  jobs: number;
}

export const log = (line: string) => process.stdout.write(`${timestamp()} ${line}\n`);

export { describePeerEvent };

/** The options of a running peer, checked by their yargs coercions; durations in ms. */
export interface PeerArgs extends IndexArgs {
  dir: string;
  port: number;
  host: string;
  idleTimeout: number;
  maxConnections: number;
  maxConnectionsPerSource: number;
  includeHidden: boolean;
  maxUploadRate?: string | number | undefined;
  refresh: number;
  rescan: number;
  settle: number;
  /** Show digests in hex. */
  hex: boolean;
  /** Downloads the peer runs at once (more are queued). */
  jobs?: number;
}

/** Checks the options a running peer takes and starts listening. */
export async function listenPeer(args: PeerArgs, downloadsOnly: boolean): Promise<{ peer: Peer; close: () => Promise<void>; uploadRate: number | undefined }> {
  const index = indexClientFrom(args);
  const port = checkPort(args.port, 'port', true);
  const uploadRate = checkRate(args.maxUploadRate, 'max-upload-rate');
  // One limiter for every connection: the cap is on the whole peer, not per downloader.
  const uploadLimiter = uploadRate === undefined ? undefined : new RateLimiter({ bytesPerSecond: uploadRate });
  const peer = await Peer.listen({
    dir: args.dir,
    index,
    port,
    host: args.host,
    idleTimeoutMs: args.idleTimeout,
    maxConnections: args.maxConnections,
    maxConnectionsPerSource: args.maxConnectionsPerSource,
    includeHidden: args.includeHidden,
    uploadLimiter,
    refreshMs: args.refresh,
    rescanMs: args.rescan,
    settleMs: args.settle,
    downloadsOnly,
    maxActiveDownloads: args.jobs,
  });
  const close = async () => {
    await peer.close();
    await uploadLimiter?.close();
  };
  return { peer, close, uploadRate };
}

/** The index's default TTL: a registration not renewed within it is dropped. */
const DEFAULT_INDEX_TTL_MS = 90_000;

/**
 * A refresh period longer than a third of the TTL leaves a registration whose renewal is lost
 * once or twice (a dropped datagram, an index restarting) to expire: accepted, with a warning.
 */
export function refreshWarning(refreshMs: number): string | undefined {
  if (refreshMs <= DEFAULT_INDEX_TTL_MS / 3) return undefined;
  return `--refresh ${formatDuration(refreshMs)} is longer than a third of the index's TTL (90 s unless index-server --ttl says otherwise): a registration whose renewal is lost may expire before the next one; 30s or less is safe`;
}

export async function serveCommand(args: ServeArgs): Promise<void> {
  const st = await stat(args.dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new PeerdexError('ERR_USAGE', `--dir ${args.dir} is not a folder`);
  const http = args.http === undefined ? undefined : parseListenAddress(args.http);
  const unsafe = http && httpSafetyProblem(http.host, args.httpToken);
  if (unsafe) throw new PeerdexError('ERR_USAGE', unsafe);
  const logger = eventLogger(args.json ? 'json' : args.logFormat);
  const info = (msg: string, fields: Record<string, unknown> = {}) => logger.log('info', msg, fields);
  // Handle signals from the start: a script may stop us as soon as it reads the port line.
  let registered: (() => number) | undefined;
  const stopped = untilStopSignal((signal) => {
    const what = registered ? `deregistering ${registered()} file(s) and closing` : 'stopping';
    info(`${signal}: ${what} (press Ctrl-C again to quit at once)`, { event: 'stopping', signal });
  });
  const { peer, close, uploadRate } = await listenPeer(args, false);
  const slow = refreshWarning(args.refresh);
  if (slow) logger.log('warn', `warning: ${slow}`, { event: 'refresh-warning', refreshMs: args.refresh });
  peer.on('event', (e) => {
    const line = describePeerEvent(e, { quiet: args.quiet, verbose: args.verbose, hex: args.hex });
    if (line !== undefined) logger.log(peerEventLevel(e), line, peerEventFields(e));
  });
  let web: PeerHttpServer | undefined;
  try {
    web = http && (await PeerHttpServer.listen({ peer, host: http.host, port: http.port, token: args.httpToken }));
  } catch (err) {
    await close();
    throw err;
  }
  const cap = uploadRate === undefined ? '' : `, uploads capped at ${formatBytes(uploadRate)}/s`;
  info(`serving ${args.dir} on tcp ${formatHostPort(args.host, peer.port)}, index ${peer.index.label}${cap}`, {
    event: 'listening',
    dir: args.dir,
    port: peer.port,
    index: peer.index.label,
  });
  if (web) info(`page and API on ${web.url} (metrics at ${web.url}metrics)`, { event: 'http-listening', url: web.url, port: web.address().port });
  // A stop during start-up (an index that does not answer) must not wait for it.
  const started = await Promise.race([peer.start().then(() => true), stopped.then(() => false)]);
  if (started) {
    const n = peer.seeder.names.length;
    info(`${n} file(s) registered for tcp port ${peer.port}; refreshing every ${formatDuration(args.refresh)} (Ctrl-C to stop)`, { event: 'started', registered: n });
    registered = () => peer.seeder.names.length;
  }
  await stopped;
  await web?.close();
  await close();
  // Registrations still being retried from start-up must not keep the process alive: what
  // they did is taken back or expires with the index's TTL.
  setImmediate(() => process.exit()).unref();
}
