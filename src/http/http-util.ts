/**
 * Small helpers for the HTTP surface: JSON answers, a bounded JSON body reader, the bearer
 * token check and the `[HOST:]PORT` form of `--http`. No framework: node:http is enough for
 * a handful of routes.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import picomatch from 'picomatch';
import { PeerdexError } from '../protocol/errors.js';

/** An error answered as `{"error": message}` with this HTTP status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, contentType: string, text: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': contentType, 'content-length': Buffer.byteLength(text), ...extra });
  res.end(text);
}

/** Reads a JSON object body of at most `limit` bytes; anything else is a 400 (or 413, 415). */
export async function readJsonObject(req: IncomingMessage, limit = 4096): Promise<Record<string, unknown>> {
  // Requiring the JSON type also means a page of another site cannot send it without a
  // CORS preflight, which this server never grants.
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) throw new HttpError(415, 'send the body as JSON with Content-Type: application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, `the body is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'the body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'the body must be a JSON object');
  return value as Record<string, unknown>;
}

/** Whether the request carries `Authorization: Bearer <token>` (compared in constant time). */
export function hasBearer(req: IncomingMessage, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(m[1]), digest(token));
}

export const isLoopback = (host: string): boolean => {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || h.startsWith('127.') || h === '::ffff:127.0.0.1';
};

/** Why an HTTP server on `host` with this token would be unsafe, or undefined when it is not. */
export function httpSafetyProblem(host: string, token: string | undefined): string | undefined {
  if (token === '') return '--http-token must not be empty';
  if (token === undefined && !isLoopback(host)) {
    return `--http on ${host} is reachable from other hosts: give --http-token TOKEN (downloads and cancels then need it), or bind 127.0.0.1`;
  }
  return undefined;
}

/** The host name of a Host header (`a:1`, `[::1]:2`), lower-cased. */
export const hostOfHeader = (value: string): string => (/^\[([^\]]*)\]/.exec(value)?.[1] ?? value.replace(/:\d*$/, '')).toLowerCase();

/** Parses `--http [HOST:]PORT`: HOST defaults to 127.0.0.1; `[v6]:PORT` for IPv6. */
export function parseListenAddress(text: string, option = 'http'): { host: string; port: number } {
  const m = /^(?:(?:\[([^\]]+)\]|([^:[\]]+)):)?(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  const host = m?.[1] ?? m?.[2] ?? '127.0.0.1';
  if (!m || port > 65535 || (m[1] !== undefined && isIP(host) !== 6)) {
    throw new PeerdexError('ERR_USAGE', `--${option} must be [HOST:]PORT (like 8080 or 0.0.0.0:8080), got "${text}"`);
  }
  return { host, port };
}

/** The names a query asks for: `match` is a glob, `contains` a case-insensitive piece; neither: all. */
export function nameTest(query: URLSearchParams): (name: string) => boolean {
  const glob = query.get('match');
  const contains = query.get('contains')?.toLowerCase();
  return glob ? picomatch(glob, { dot: true }) : contains ? (n: string) => n.toLowerCase().includes(contains) : () => true;
}

export { redisLabel } from '../index/redis-url.js';
