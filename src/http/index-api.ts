/**
 * The index's figures and JSON API: the live counters of the UDP server (exact, read when
 * asked) with a census of the registry (index-census.ts), as one object for `/api/stats` and
 * as Prometheus metrics for `/metrics` (the names are a public interface); pages of names
 * with their holders; the servers with how many names each holds.
 */
import type { IndexServer } from '../index/udp-server.js';
import type { ApiResult } from './http-server.js';
import { HttpError, nameTest } from './http-util.js';
import { contentPage, serverCounts, type RegistryCensus } from './index-census.js';
import { LiveMetrics } from './live-metrics.js';

export const REQUEST_TYPES = ['R', 'S', 'T', 'O', 'E'] as const;
export const REFUSAL_CODES = [3, 4, 5, 6] as const;
/** Page sizes of /api/content and /api/servers: default and most. */
export const PAGE_DEFAULT = 100;
export const PAGE_MOST = 1000;

/** Where this index is (and, with --redis, which cluster it belongs to), for the page. */
export interface IndexIdentity {
  udp: string;
  /** The Redis URL without its password, and the key prefix. */
  cluster?: { redis: string; prefix: string } | undefined;
}

const requestsOf = (server: IndexServer, type: string) => server.counters.byType[type.charCodeAt(0)];
const refusalsOf = (server: IndexServer, code: number) => server.counters.refusedByCode[code];

export async function stats(server: IndexServer, census: RegistryCensus, identity: IndexIdentity, startedAt: number): Promise<ApiResult> {
  const c = await census.current();
  return {
    status: 200,
    body: {
      index: identity,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      requests: Object.fromEntries(REQUEST_TYPES.map((t) => [t, requestsOf(server, t)])),
      refusals: Object.fromEntries(REFUSAL_CODES.map((code) => [code, refusalsOf(server, code)])),
      dropped: server.stats.dropped,
      registrations: c.registrations,
      names: c.names,
      servers: c.servers,
      datagrams: server.stats.received,
      replies: server.stats.replies,
      listings: server.listings,
    },
  };
}

export function indexMetrics(server: IndexServer, census: RegistryCensus): LiveMetrics {
  const m = new LiveMetrics();
  m.labelledCounter(
    'peerdex_index_requests_total',
    'Requests decoded, by PDU type',
    'type',
    REQUEST_TYPES.map((t) => [t, () => requestsOf(server, t)] as const),
  );
  m.labelledCounter(
    'peerdex_index_refusals_total',
    'E answers sent, by error code',
    'code',
    REFUSAL_CODES.map((code) => [String(code), () => refusalsOf(server, code)] as const),
  );
  m.counter('peerdex_index_dropped_total', 'Datagrams dropped without an answer (not a request, or over a rate)', () => server.stats.dropped);
  m.gauge('peerdex_index_registrations', 'Live registrations', async () => (await census.current()).registrations);
  m.gauge('peerdex_index_names', 'Distinct names with a live registration', async () => (await census.current()).names);
  m.gauge('peerdex_index_servers', 'Content servers with a live registration', async () => (await census.current()).servers);
  return m;
}

/** A whole number query parameter in 0..most, or `fallback` when absent. */
function count(query: URLSearchParams, key: string, fallback: number, least: number, most: number): number {
  const text = query.get(key);
  if (text === null) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < least || n > most) throw new HttpError(400, `${key} must be a whole number from ${least} to ${most}, got "${text}"`);
  return n;
}

/** `?match=GLOB` or `?contains=TEXT`, `limit` (default 100, most 1000), `after` (the `next` of the page before). */
export async function content(server: IndexServer, query: URLSearchParams): Promise<ApiResult> {
  const limit = count(query, 'limit', PAGE_DEFAULT, 1, PAGE_MOST);
  const page = await contentPage(server.registry, nameTest(query), query.get('after') ?? '', limit, Date.now());
  return { status: 200, body: page };
}

/** `?limit` (default 100, most 1000) and `offset`: servers, most names first, and their `total`. */
export async function servers(server: IndexServer, query: URLSearchParams): Promise<ApiResult> {
  const limit = count(query, 'limit', PAGE_DEFAULT, 1, PAGE_MOST);
  const offset = count(query, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
  return { status: 200, body: await serverCounts(server.registry, offset, limit, Date.now()) };
}
