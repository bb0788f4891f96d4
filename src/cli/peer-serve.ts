/** `peer serve`: content server plus a seeder that keeps the folder registered. */
import { stat } from 'node:fs/promises';
import { PeerdexError } from '../protocol/errors.js';
import { formatHostPort } from '../protocol/fields.js';
import { ContentServer, type ContentServerEvent } from '../peer/content-server.js';
import { FileLibrary } from '../peer/file-library.js';
import { parseRate, RateLimiter } from '../peer/rate-limiter.js';
import { Seeder, type SeederEvent } from '../peer/seeder.js';
import { checkPort, formatBytes, indexClientFrom, type IndexArgs } from './common.js';
import { escapeForTerminal, timestamp, untilSignal } from './output.js';

export interface ServeArgs extends IndexArgs {
  dir: string;
  port: number;
  host: string;
  refresh: number;
  rescan: number;
  idleTimeout: number;
  maxConnections: number;
  /** Bytes per second as typed (`500k`, `10M`); absent means no cap. */
  maxUploadRate?: string | undefined;
  quiet: boolean;
}

const log = (line: string) => process.stdout.write(`${timestamp()} ${line}\n`);

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

export async function serveCommand(args: ServeArgs): Promise<void> {
  const index = indexClientFrom(args);
  const port = checkPort(args.port, 'port', true);
  const st = await stat(args.dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new PeerdexError('ERR_USAGE', `--dir ${args.dir} is not a folder`);
  if (!(args.refresh > 0 && args.rescan > 0)) throw new PeerdexError('ERR_USAGE', '--refresh and --rescan must be positive numbers of seconds');
  if (!(args.idleTimeout > 0 && args.idleTimeout <= 86_400)) throw new PeerdexError('ERR_USAGE', `--idle-timeout must be 0 < seconds <= 86400, got ${args.idleTimeout}`);
  if (!(Number.isInteger(args.maxConnections) && args.maxConnections >= 1)) throw new PeerdexError('ERR_USAGE', `--max-connections must be a whole number >= 1, got ${args.maxConnections}`);
  const uploadRate = checkRate(args.maxUploadRate, 'max-upload-rate');

  // Handle signals from the start: a script may stop us as soon as it reads the port line.
  const stopped = untilSignal();
  const library = new FileLibrary(args.dir);
  // One limiter for every connection: the cap is on the whole peer, not per downloader.
  const uploadLimiter = uploadRate === undefined ? undefined : new RateLimiter({ bytesPerSecond: uploadRate });
  const server = await ContentServer.listen({ library, port, host: args.host, idleTimeoutMs: args.idleTimeout * 1000, maxConnections: args.maxConnections, uploadLimiter });
  const actualPort = server.address().port;
  const seeder = new Seeder({ library, index, contentPort: actualPort, refreshMs: args.refresh * 1000, rescanMs: args.rescan * 1000 });
  seeder.on('event', (e) => {
    if (!args.quiet || e.type === 'skipped' || e.type === 'index-error') log(describeSeeder(e));
  });
  if (!args.quiet) server.on('event', (e) => log(describeServer(e)));

  const cap = uploadRate === undefined ? '' : `, uploads capped at ${formatBytes(uploadRate)}/s`;
  log(`serving ${args.dir} on tcp ${formatHostPort(args.host, actualPort)}, index ${index.label}${cap}`);
  await seeder.start();
  log(`${seeder.names.length} file(s) registered for tcp port ${actualPort}; refreshing every ${args.refresh} s (Ctrl-C to stop)`);
  const signal = await stopped;
  log(`${signal}: deregistering ${seeder.names.length} file(s) and closing`);
  await seeder.close();
  await server.close();
  await uploadLimiter?.close();
}

/** The bytes per second of a rate option, or undefined when it was not given. */
function checkRate(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  const rate = parseRate(text);
  if (rate === undefined) throw new PeerdexError('ERR_USAGE', `--${option} must be bytes per second like 500k or 10M, got ${JSON.stringify(text)}`);
  return rate;
}
