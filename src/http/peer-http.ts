/**
 * The HTTP surface of a running peer: `/metrics` (Prometheus), `/healthz`, the JSON API
 * (peer-api.ts) and a page for people (`/`). Safety (http-server.ts): it refuses to listen on
 * a non-loopback address without a token; with a token, POST and DELETE need
 * `Authorization: Bearer TOKEN`. Bound to loopback, requests must name a loopback host (a
 * DNS-rebinding page cannot reach it), and POST bodies must be JSON (a form on another site
 * cannot send one unpreflighted).
 */
import type http from 'node:http';
import type { Peer } from '../peer/peer.js';
import { answerAsset, HttpSurface, SurfaceOwner, type ApiResult, type PageAssets } from './http-server.js';
import { httpSafetyProblem, HttpError, readJsonObject } from './http-util.js';
import { cancelDownload, searchIndex, startDownloads, status } from './peer-api.js';
import { peerMetrics } from './peer-metrics.js';
import { PEER_PAGE } from './peer-page.js';
import { PEER_PAGE_SCRIPT } from './peer-page-script.js';

export interface PeerHttpOptions {
  peer: Peer;
  /** Default 127.0.0.1. Any other address needs `token`. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Bearer token the endpoints that change something require (always, once given). */
  token?: string | undefined;
}

export class PeerHttpServer extends SurfaceOwner {
  static async listen(options: PeerHttpOptions): Promise<PeerHttpServer> {
    const route = peerRoute(options.peer, options.token !== undefined, { page: PEER_PAGE, scriptPath: '/peer.js', script: PEER_PAGE_SCRIPT, metrics: peerMetrics(options.peer) });
    const surface = await HttpSurface.listen({ ...options, safetyProblem: httpSafetyProblem, tokenHint: 'the --http-token of peer serve' }, route);
    return new PeerHttpServer(surface);
  }
}

function peerRoute(peer: Peer, authRequired: boolean, assets: PageAssets) {
  return async (method: string, url: URL, req: http.IncomingMessage, res: http.ServerResponse): Promise<ApiResult | undefined> => {
    const path = url.pathname;
    if (path === '/api/downloads' && method === 'POST') return startDownloads(peer, await readJsonObject(req));
    const cancel = /^\/api\/downloads\/([^/]+)$/.exec(path);
    if (cancel && method === 'DELETE') return cancelDownload(peer, decodeURIComponent(cancel[1]));
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, `${method} ${path} is not supported`);
    if (await answerAsset(path, res, assets)) return undefined;
    if (path === '/api/status') return status(peer, authRequired);
    if (path === '/api/index/search') return searchIndex(peer, url.searchParams);
    throw new HttpError(404, `nothing at ${path}`);
  };
}
