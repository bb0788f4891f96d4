/**
 * The JSON API of a running peer: its status, a search of the index's listing, and starting
 * and cancelling downloads. Each handler takes parsed input and returns a status and a body,
 * or throws an HttpError; the server (peer-http.ts) does the routing and the auth.
 */
import picomatch from 'picomatch';
import { filenameProblem } from '../protocol/fields.js';
import type { Peer } from '../peer/peer.js';
import type { ApiResult } from './http-server.js';
import { HttpError, nameTest } from './http-util.js';

/** Most names a search answers with; `truncated` says when there were more. */
export const SEARCH_LIMIT = 500;

export type { ApiResult } from './http-server.js';

export function status(peer: Peer, authRequired: boolean): ApiResult {
  const { active, recent } = peer.downloads();
  return {
    status: 200,
    body: {
      peer: { port: peer.port, dir: peer.dir, index: peer.index.label, authRequired },
      totals: { bytesSent: peer.bytesSent, bytesReceived: peer.bytesReceived },
      shared: peer.sharedFiles,
      downloads: { active, recent },
      uploads: peer.uploads,
    },
  };
}

/**
 * Names of the index's listing (an `O` request) with their holders: `match` is a glob, or
 * `contains` a case-insensitive piece of the name; neither lists everything.
 */
export async function searchIndex(peer: Peer, query: URLSearchParams): Promise<ApiResult> {
  const test = nameTest(query);
  const holders = new Map<string, { addr: string; port: number }[]>();
  for (const server of await listing(peer)) {
    for (const name of server.names) {
      if (!test(name)) continue;
      const list = holders.get(name) ?? [];
      list.push({ addr: server.addr, port: server.port });
      holders.set(name, list);
    }
  }
  const mine = new Set(peer.sharedFiles.map((f) => f.name));
  const names = [...holders.keys()].sort();
  const results = names.slice(0, SEARCH_LIMIT).map((name) => ({ name, holders: holders.get(name)!, sharedHere: mine.has(name), downloading: peer.isDownloading(name) }));
  return { status: 200, body: { results, total: names.length, truncated: names.length > SEARCH_LIMIT } };
}

/** `{"name": "x.bin"}` or `{"match": "*.iso"}`: starts the downloads, 201 with their ids. */
export async function startDownloads(peer: Peer, body: Record<string, unknown>): Promise<ApiResult> {
  const { name, match } = body;
  const extra = Object.keys(body).filter((k) => k !== 'name' && k !== 'match');
  if (extra.length > 0) throw new HttpError(400, `unknown field(s) ${extra.map((k) => JSON.stringify(k)).join(', ')}: send {"name": "x.bin"} or {"match": "*.iso"}`);
  if ((name === undefined) === (match === undefined)) throw new HttpError(400, 'send exactly one of {"name": "x.bin"} or {"match": "*.iso"}');
  if (name !== undefined) {
    if (typeof name !== 'string') throw new HttpError(400, '"name" must be a string');
    const problem = filenameProblem(name);
    if (problem) throw new HttpError(400, `cannot download ${JSON.stringify(name)}: ${problem}`);
    if (peer.isDownloading(name)) throw new HttpError(409, `${JSON.stringify(name)} is already being downloaded`);
    const { id } = start(peer, name);
    return { status: 201, body: { id, name, downloads: [{ id, name }] } };
  }
  if (typeof match !== 'string' || match === '') throw new HttpError(400, '"match" must be a glob like "*.iso"');
  const test = picomatch(match, { dot: true });
  const listed = new Set((await listing(peer)).flatMap((s) => s.names).filter((n) => test(n) && filenameProblem(n) === undefined));
  if (listed.size === 0) throw new HttpError(404, `no name in index ${peer.index.label} matches ${JSON.stringify(match)}`);
  const mine = new Set(peer.sharedFiles.map((f) => f.name));
  const wanted = [...listed].sort().filter((n) => !mine.has(n) && !peer.isDownloading(n));
  const downloads = wanted.map((n) => ({ id: start(peer, n).id, name: n }));
  return { status: 201, body: { downloads, alreadyHere: listed.size - wanted.length } };
}

export function cancelDownload(peer: Peer, idText: string): ApiResult {
  const id = /^\d{1,15}$/.test(idText) ? Number(idText) : NaN;
  if (!Number.isSafeInteger(id)) throw new HttpError(400, `download ids are whole numbers, got ${JSON.stringify(idText)}`);
  if (!peer.cancel(id)) throw new HttpError(404, `no queued or running download has id ${id}`);
  return { status: 200, body: { id, cancelled: true } };
}

/** Starts one download; its outcome is seen in the status, so the promise is only observed. */
function start(peer: Peer, name: string): { id: number } {
  const { id, result } = peer.startDownload(name);
  result.catch(() => {});
  return { id };
}

async function listing(peer: Peer) {
  try {
    return await peer.index.list();
  } catch (err) {
    throw new HttpError(502, `could not list index ${peer.index.label}: ${(err as Error).message}`);
  }
}
