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
  return { host: m[1], port };
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
  /** First wait for an index reply, in ms. */
  timeout: number;
  tries: number;
}

/** --index, --timeout, --tries: how to reach the index. */
export function withIndexOptions<T>(y: Argv<T>) {
  return y
    .option('index', {
      type: 'string',
      default: DEFAULT_INDEX,
      requiresArg: true,
      describe: 'index server as host:port, or several as host:port,host:port (each retry asks the next)',
    })
    .option('timeout', {
      default: '300ms',
      requiresArg: true,
      coerce: durationOption('timeout', 'ms', { max: 60_000 }),
      describe: 'first wait for an answer from the index, like 300ms or 2s (a plain number is milliseconds); it grows with each retry',
    })
    .option('tries', {
      default: 8,
      requiresArg: true,
      coerce: countOption('tries', 1, 100),
      describe: 'requests sent to the index before giving up (over all indexes, at least one each)',
    });
}

export function indexClientFrom(args: IndexArgs): IndexClient {
  const [{ host, port }, ...failover] = parseIndexList(args.index) as [{ host: string; port: number }];
  return new IndexClient({ host, port, failover, timeoutMs: args.timeout, tries: args.tries });
}

/** How an option value is quoted in an error message: as typed (strings) or as JSON (a config file's values). */
const shown = (value: unknown): string => JSON.stringify(typeof value === 'number' ? String(value) : value) ?? String(value);

const usage = (message: string) => new PeerdexError('ERR_USAGE', message);

/** Checks a --port value: 1..65535 (or 0 where "any free port" makes sense). */
export function checkPort(value: unknown, name: string, allowZero = false): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  const ok = Number.isInteger(n) && n <= 65535 && (n >= 1 || (allowZero && n === 0));
  if (!ok) throw usage(`--${name} must be a port number ${allowZero ? '0' : '1'}..65535${allowZero ? ' (0 = any free port)' : ''}, got ${shown(value)}`);
  return n;
}

/** A yargs `coerce` for a port option. */
export const portOption =
  (name: string, allowZero = false) =>
  (value: unknown): number =>
    checkPort(value, name, allowZero);

/** A whole number option with bounds (a string as typed, or a number from a config file). */
export function checkCount(value: unknown, option: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*[-+]?\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!(Number.isInteger(n) && n >= min && n <= max)) {
    const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;
    throw usage(`--${option} must be a whole number ${range}, got ${shown(value)}`);
  }
  return n;
}

/** A yargs `coerce` for a whole number option. */
export const countOption =
  (option: string, min: number, max?: number) =>
  (value: unknown): number =>
    checkCount(value, option, min, max);

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DAY_MS = 86_400_000;

/** `1500` -> "1.5 s", `120000` -> "2 min": a duration as people read it in messages. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000 || ms % 60_000 !== 0) return `${+(ms / 1000).toFixed(3)} s`;
  return ms % 3_600_000 === 0 ? `${ms / 3_600_000} h` : `${ms / 60_000} min`;
}

export interface DurationBounds {
  /** 0 is allowed (otherwise a duration must be more than 0). */
  allowZero?: boolean;
  /** Longest allowed, in ms (default: a day). */
  max?: number;
}

/**
 * The one duration parser of the command line: `300ms`, `2s`, `1.5m`, `1h`, or a plain number
 * in the flag's own unit (`plainUnit`: ms for --timeout, seconds for the others). Returns
 * milliseconds; a message names the flag and the value.
 */
export function parseDuration(value: unknown, option: string, plainUnit: 'ms' | 's', bounds: DurationBounds = {}): number {
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : '';
  const m = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?$/i.exec(text);
  const plain = plainUnit === 'ms' ? 'milliseconds' : 'seconds';
  if (!m) throw usage(`--${option} must be a duration like 300ms, 2s or 1m (a plain number is ${plain}), got ${shown(value)}`);
  const ms = Math.round(Number(m[1]) * UNIT_MS[(m[2] ?? plainUnit).toLowerCase()]);
  const max = bounds.max ?? DAY_MS;
  if (ms > max || (ms === 0 && !bounds.allowZero)) {
    throw usage(`--${option} must be ${bounds.allowZero ? 'from 0' : 'more than 0'} up to ${formatDuration(max)}, got ${shown(value)}`);
  }
  return ms;
}

/** A yargs `coerce` for a duration option: the value in milliseconds. */
export const durationOption =
  (option: string, plainUnit: 'ms' | 's', bounds?: DurationBounds) =>
  (value: unknown): number =>
    parseDuration(value, option, plainUnit, bounds);

/** SHA-256 as base64url (the protocol's form) -> hex, as `sha256sum` prints it. */
export const sha256Hex = (base64url: string): string => Buffer.from(base64url, 'base64url').toString('hex');

/** How a digest is shown to people: base64url, or hex with --hex. */
export const showSha256 = (base64url: string, hex: boolean): string => (hex ? sha256Hex(base64url) : base64url);

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
export function checkRate(value: string | number | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  const rate = parseRate(text);
  if (rate === undefined) throw new PeerdexError('ERR_USAGE', `--${option} must be bytes per second like 500k or 10M, got ${JSON.stringify(text)}`);
  return rate;
}

/** A size option (`2G`, `500M`, `1000`): bytes, k = 1024. */
export function checkSize(value: string | number | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  const size = /\/s$/i.test(text) ? undefined : parseRate(text);
  if (size === undefined) throw new PeerdexError('ERR_USAGE', `--${option} must be a size in bytes like 700M or 4G, got ${JSON.stringify(text)}`);
  return size;
}
