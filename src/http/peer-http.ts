/**
 * The HTTP surface of a running peer: `/metrics` (Prometheus), `/healthz`, the JSON API
 * (peer-api.ts) and a page for people (`/`). Safety: it refuses to listen on a non-loopback
 * address without a token; with a token, POST and DELETE need `Authorization: Bearer TOKEN`.
 * Bound to loopback, requests must name a loopback host (a DNS-rebinding page cannot reach
 * it), and POST bodies must be JSON (a form on another site cannot send one unpreflighted).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenError, PeerdexError } from '../protocol/errors.js';
import { formatHostPort } from '../protocol/fields.js';
import type { Peer } from '../peer/peer.js';
import { hasBearer, httpSafetyProblem, hostOfHeader, HttpError, isLoopback, readJsonObject, sendJson, sendText } from './http-util.js';
import { cancelDownload, searchIndex, startDownloads, status, type ApiResult } from './peer-api.js';
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

export class PeerHttpServer {
  readonly #server: http.Server;
  readonly #peer: Peer;
  readonly #token: string | undefined;
  readonly #loopback: boolean;
  readonly #metrics;
  #closed: Promise<void> | undefined;

  private constructor(server: http.Server, options: PeerHttpOptions, loopback: boolean) {
    this.#server = server;
    this.#peer = options.peer;
    this.#token = options.token;
    this.#loopback = loopback;
    this.#metrics = peerMetrics(options.peer);
    server.on('request', (req, res) => void this.#handle(req, res));
  }

  static async listen(options: PeerHttpOptions): Promise<PeerHttpServer> {
    const host = options.host ?? '127.0.0.1';
    const loopback = isLoopback(host);
    const unsafe = httpSafetyProblem(host, options.token);
    if (unsafe) throw new PeerdexError('ERR_USAGE', unsafe);
    const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000 });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(listenError('TCP', host, options.port, err)));
      server.listen(options.port, host, () => resolve());
    });
    return new PeerHttpServer(server, options, loopback);
  }

  address(): { address: string; port: number } {
    const a = this.#server.address() as AddressInfo;
    return { address: a.address, port: a.port };
  }

  /** The page's address, for people (`http://127.0.0.1:8080/`). */
  get url(): string {
    const { address, port } = this.address();
    const host = address === '0.0.0.0' || address === '::' ? '127.0.0.1' : address;
    return `http://${formatHostPort(host, port)}/`;
  }

  /** Stops listening and closes every connection (page polls included). Idempotent. */
  close(): Promise<void> {
    this.#closed ??= new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    return this.#closed;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://peer');
      if (this.#loopback && !isLoopback(hostOfHeader(req.headers.host ?? ''))) throw new HttpError(403, 'this server answers only requests addressed to a loopback host (127.0.0.1, localhost, [::1])');
      const method = req.method ?? 'GET';
      if (method === 'POST' || method === 'DELETE') this.#authorize(req);
      const result = await this.#route(method, url, req, res);
      if (result) sendJson(res, result.status, result.body);
    } catch (err) {
      if (res.headersSent) return void res.destroy();
      const status = err instanceof HttpError ? err.status : 500;
      sendJson(res, status, { error: err instanceof HttpError ? err.message : `internal error: ${(err as Error).message}` });
    }
  }

  #authorize(req: http.IncomingMessage): void {
    if (this.#token === undefined || hasBearer(req, this.#token)) return;
    throw new HttpError(401, 'this request needs Authorization: Bearer TOKEN (the --http-token of peer serve)');
  }

  /** Answers the request, or returns what to answer as JSON. */
  async #route(method: string, url: URL, req: http.IncomingMessage, res: http.ServerResponse): Promise<ApiResult | undefined> {
    const path = url.pathname;
    const peer = this.#peer;
    if (path === '/api/downloads' && method === 'POST') return startDownloads(peer, await readJsonObject(req));
    const cancel = /^\/api\/downloads\/([^/]+)$/.exec(path);
    if (cancel && method === 'DELETE') return cancelDownload(peer, decodeURIComponent(cancel[1]!));
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, `${method} ${path} is not supported`);
    switch (path) {
      case '/':
        sendText(res, 200, 'text/html; charset=utf-8', PEER_PAGE, { 'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'" });
        return undefined;
      case '/peer.js':
        sendText(res, 200, 'text/javascript; charset=utf-8', PEER_PAGE_SCRIPT);
        return undefined;
      case '/healthz':
        sendText(res, 200, 'text/plain; charset=utf-8', 'ok\n');
        return undefined;
      case '/metrics':
        sendText(res, 200, this.#metrics.contentType, await this.#metrics.metrics());
        return undefined;
      case '/api/status':
        return status(peer, this.#token !== undefined);
      case '/api/index/search':
        return searchIndex(peer, url.searchParams);
      default:
        throw new HttpError(404, `nothing at ${path}`);
    }
  }
}
