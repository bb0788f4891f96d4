/**
 * The node:http server both HTTP surfaces (a peer's, the index's) stand on: listening with a
 * clear error, the page's URL, an idempotent close, the Host check that keeps DNS-rebinding
 * pages out of a loopback-bound server, the bearer token for the methods that change
 * something, and JSON errors. What each path answers is the owner's `route`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenError, PeerdexError } from '../protocol/errors.js';
import { formatHostPort } from '../protocol/fields.js';
import { hasBearer, hostOfHeader, HttpError, isLoopback, sendJson, sendText } from './http-util.js';
import type { LiveMetrics } from './live-metrics.js';
import { PAGE_COMMON_SCRIPT } from './page-common.js';

/** What a route answers as JSON; undefined when it answered itself. */
export interface ApiResult {
  status: number;
  body: unknown;
}

export type Route = (method: string, url: URL, req: http.IncomingMessage, res: http.ServerResponse) => Promise<ApiResult | undefined>;

export interface HttpSurfaceOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Bearer token POST and DELETE need, once given. */
  token?: string | undefined;
  /** Why this host and token would be unsafe (the server then refuses to listen). */
  safetyProblem?: (host: string, token: string | undefined) => string | undefined;
  /** The hint in a 401: where the token comes from. */
  tokenHint?: string;
}

export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export class HttpSurface {
  readonly #server: http.Server;
  #closed: Promise<void> | undefined;

  private constructor(server: http.Server) {
    this.#server = server;
  }

  static async listen(options: HttpSurfaceOptions, route: Route): Promise<HttpSurface> {
    const host = options.host ?? '127.0.0.1';
    const unsafe = options.safetyProblem?.(host, options.token);
    if (unsafe) throw new PeerdexError('ERR_USAGE', unsafe);
    const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000 });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(listenError('TCP', host, options.port, err)));
      server.listen(options.port, host, () => resolve());
    });
    const loopback = isLoopback(host);
    const authorize = (req: http.IncomingMessage) => {
      if (options.token === undefined || hasBearer(req, options.token)) return;
      throw new HttpError(401, `this request needs Authorization: Bearer TOKEN (${options.tokenHint ?? 'the --http-token'})`);
    };
    server.on('request', (req, res) => void answer(req, res, loopback, authorize, route));
    return new HttpSurface(server);
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
}

async function answer(req: http.IncomingMessage, res: http.ServerResponse, loopback: boolean, authorize: (req: http.IncomingMessage) => void, route: Route): Promise<void> {
  try {
    const url = new URL(req.url ?? '/', 'http://peerdex');
    if (loopback && !isLoopback(hostOfHeader(req.headers.host ?? '')))
      throw new HttpError(403, 'this server answers only requests addressed to a loopback host (127.0.0.1, localhost, [::1])');
    const method = req.method ?? 'GET';
    if (method === 'POST' || method === 'DELETE') authorize(req);
    const result = await route(method, url, req, res);
    if (result) sendJson(res, result.status, result.body);
  } catch (err) {
    if (res.headersSent) return void res.destroy();
    const status = err instanceof HttpError ? err.status : 500;
    sendJson(res, status, { error: err instanceof HttpError ? err.message : `internal error: ${(err as Error).message}` });
  }
}

/** A server for people built on an HttpSurface: its address, its page's URL, close(). */
export class SurfaceOwner {
  readonly #surface: HttpSurface;

  protected constructor(surface: HttpSurface) {
    this.#surface = surface;
  }

  address(): { address: string; port: number } {
    return this.#surface.address();
  }

  /** The page's address, for people (`http://127.0.0.1:8080/`). */
  get url(): string {
    return this.#surface.url;
  }

  /** Stops listening and closes every connection (page polls included). Idempotent. */
  close(): Promise<void> {
    return this.#surface.close();
  }
}

/** What both servers answer alike: the page, its scripts, the health check and the metrics. */
export interface PageAssets {
  page: string;
  /** Where the page's own script is served (`/peer.js`). */
  scriptPath: string;
  script: string;
  metrics: LiveMetrics;
}

/** Answers `path` if it is one of the assets; false otherwise. */
export async function answerAsset(path: string, res: http.ServerResponse, assets: PageAssets): Promise<boolean> {
  const script = (text: string) => sendText(res, 200, 'text/javascript; charset=utf-8', text);
  if (path === '/') sendText(res, 200, 'text/html; charset=utf-8', assets.page, { 'content-security-policy': PAGE_CSP });
  else if (path === '/common.js') script(PAGE_COMMON_SCRIPT);
  else if (path === assets.scriptPath) script(assets.script);
  else if (path === '/healthz') sendText(res, 200, 'text/plain; charset=utf-8', 'ok\n');
  else if (path === '/metrics') sendText(res, 200, assets.metrics.contentType, await assets.metrics.metrics());
  else return false;
  return true;
}
