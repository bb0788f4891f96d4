/** Options and parsing shared by the `peer` subcommands. */
import type { Argv } from 'yargs';
import { PeerdexError } from '../protocol/errors.js';
import { parsePort } from '../protocol/fields.js';
import { IndexClient } from '../peer/index-client.js';
import { parseRate } from '../peer/rate-limiter.js';

export const DEFAULT_INDEX = '127.0.0.1:9000';
export const DEFAULT_CONTENT_PORT = 9100;

/** Parses `host:port`, `[v6]:port` or a bare `host` (port 9000). */
export function parseHostPort(text: string, defaultPort = 9000): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  const port = m?.[2] === undefined ? defaultPort : parsePort(m[2]);
  if (!m || port === undefined) throw new PeerdexError('ERR_USAGE', `--index must be host:port (like ${DEFAULT_INDEX}), got "${text}"`);
  return { host: m[1]!, port };
}

/**
 * Parses --index: one `host:port`, or several separated by commas (`h1:9000,h2:9000`), tried
 * in turn. Repeats are dropped. One address gives exactly parseHostPort's errors.
 */
export function parseIndexList(text: string): { host: string; port: number }[] {
  if (!text.includes(',')) return [parseHostPort(text)];
  const seen = new Set<string>();
  const list: { host: string; port: number }[] = [];
  for (const part of text.split(',')) {
    const item = part.trim();
    let address;
    try {
      if (item === '') throw new PeerdexError('ERR_USAGE', 'empty');
      address = parseHostPort(item);
    } catch {
      throw new PeerdexError('ERR_USAGE', `--index must be host:port or a comma-separated list of them (like ${DEFAULT_INDEX},127.0.0.1:9001), got "${text}"`);
    }
    const key = `${address.host}|${address.port}`;
    if (!seen.has(key)) list.push(address);
    seen.add(key);
  }
  return list;
}

export interface IndexArgs {
  index: string;
  timeout: number;
  tries: number;
}

/** --index, --timeout, --tries: how to reach the index. */
export function withIndexOptions<T>(y: Argv<T>) {
  return y
    .option('index', { type: 'string', default: DEFAULT_INDEX, describe: 'index server as host:port, or several as host:port,host:port (each retry asks the next)' })
    .option('timeout', { type: 'number', default: 300, describe: 'first wait for an index reply, ms (grows on retry)' })
    .option('tries', { type: 'number', default: 8, describe: 'index requests sent before giving up (over all indexes, at least one each)' });
}

export function indexClientFrom(args: IndexArgs): IndexClient {
  const [{ host, port }, ...failover] = parseIndexList(args.index) as [{ host: string; port: number }];
  if (!(args.tries >= 1)) throw new PeerdexError('ERR_USAGE', `--tries must be at least 1, got ${args.tries}`);
  if (!(args.timeout > 0)) throw new PeerdexError('ERR_USAGE', `--timeout must be a positive number of milliseconds, got ${args.timeout}`);
  return new IndexClient({ host, port, failover, timeoutMs: args.timeout, tries: Math.floor(args.tries) });
}

/** Checks a --port value: 1..65535 (or 0 where "any free port" makes sense). */
export function checkPort(value: number, name: string, allowZero = false): number {
  const ok = Number.isInteger(value) && value <= 65535 && (value >= 1 || (allowZero && value === 0));
  if (!ok) throw new PeerdexError('ERR_USAGE', `--${name} must be a port number ${allowZero ? '0' : '1'}..65535, got ${value}`);
  return value;
}

export const printJson = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
};

export const formatBytes = (n: number): string => {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
};

/** The bytes per second of a rate option (`500k`, `10M`), or undefined when it was not given. */
export function checkRate(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  const rate = parseRate(text);
  if (rate === undefined) throw new PeerdexError('ERR_USAGE', `--${option} must be bytes per second like 500k or 10M, got ${JSON.stringify(text)}`);
  return rate;
}

/** A size option (`2G`, `500M`, `1000`): bytes, k = 1024. */
export function checkSize(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  const size = /\/s$/i.test(text) ? undefined : parseRate(text);
  if (size === undefined) throw new PeerdexError('ERR_USAGE', `--${option} must be a size in bytes like 700M or 4G, got ${JSON.stringify(text)}`);
  return size;
}

/** A whole number option with bounds. */
export function checkCount(value: number, option: string, min: number, max: number): number {
  if (!(Number.isInteger(value) && value >= min && value <= max)) throw new PeerdexError('ERR_USAGE', `--${option} must be a whole number from ${min} to ${max}, got ${value}`);
  return value;
}

/** A seconds option: positive, at most a day. */
export function checkSeconds(value: number, option: string, allowZero = false): number {
  if (!((value > 0 || (allowZero && value === 0)) && value <= 86_400)) throw new PeerdexError('ERR_USAGE', `--${option} must be ${allowZero ? '0' : 'more than 0'} to 86400 seconds, got ${value}`);
  return value;
}
