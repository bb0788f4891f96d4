/**
 * The HTTP surface of an index server (`index-server --http`): `/metrics` (Prometheus),
 * `/healthz`, `/api/stats`, `/api/content`, `/api/servers` and a status page for people
 * (`/`). Nothing here changes the index, so no token is needed; bound to loopback (the
 * default), requests must name a loopback host (http-server.ts). The counters are the UDP
 * server's own, read only when asked: the S path pays nothing for this.
 */
import type http from 'node:http';
import type { IndexServer } from '../index/udp-server.js';
import { formatHostPort } from '../protocol/fields.js';
import { answerAsset, HttpSurface, SurfaceOwner, type ApiResult, type PageAssets } from './http-server.js';
import { HttpError } from './http-util.js';
import { content, indexMetrics, servers, stats, type IndexIdentity } from './index-api.js';
import { RegistryCensus } from './index-census.js';
import { INDEX_PAGE } from './index-page.js';
import { INDEX_PAGE_SCRIPT } from './index-page-script.js';

export interface IndexHttpOptions {
  server: IndexServer;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** With --redis: the cluster this index belongs to (Redis URL without password, prefix). */
  cluster?: IndexIdentity['cluster'];
}

export class IndexHttpServer extends SurfaceOwner {
  static async listen(options: IndexHttpOptions): Promise<IndexHttpServer> {
    const { server } = options;
    const { address, port } = server.address();
    const identity: IndexIdentity = { udp: formatHostPort(address, port), cluster: options.cluster };
    const census = new RegistryCensus(server.registry);
    const assets = { page: INDEX_PAGE, scriptPath: '/index.js', script: INDEX_PAGE_SCRIPT, metrics: indexMetrics(server, census) };
    return new IndexHttpServer(await HttpSurface.listen(options, indexRoute(server, census, identity, assets)));
  }
}

function indexRoute(server: IndexServer, census: RegistryCensus, identity: IndexIdentity, assets: PageAssets) {
  const startedAt = Date.now();
  return async (method: string, url: URL, _req: http.IncomingMessage, res: http.ServerResponse): Promise<ApiResult | undefined> => {
    const path = url.pathname;
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, `${method} ${path} is not supported`);
    if (await answerAsset(path, res, assets)) return undefined;
    if (path === '/api/stats') return stats(server, census, identity, startedAt);
    if (path === '/api/content') return content(server, url.searchParams);
    if (path === '/api/servers') return servers(server, url.searchParams);
    throw new HttpError(404, `nothing at ${path}`);
  };
}
