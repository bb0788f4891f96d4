/**
 * The content server: answers D requests over TCP with an E PDU, or a C header and C frames
 * (PROTOCOL.md section 2). Each connection is served by its own async loop, so a slow or
 * silent downloader only ever holds up itself; idle connections are closed.
 */
import { EventEmitter } from 'node:events';
import { open, type FileHandle } from 'node:fs/promises';
import net from 'node:net';
import { ErrorCode, isPeerdexError, listenError } from '../protocol/errors.js';
import { formatHostPort } from '../protocol/fields.js';
import { encodeError } from '../protocol/index-messages.js';
import { decodePdu } from '../protocol/pdu.js';
import { encodeContentHeader, packetsFor, parseDownloadFields, type DownloadRequest } from '../protocol/transfer-messages.js';
import type { FileLibrary } from './file-library.js';
import { FrameSender } from './send-range.js';
import { PduReader } from './pdu-reader.js';
import type { RateLimiter } from './rate-limiter.js';

/** Bytes of E answers a client may leave unread before it is cut off. */
const MAX_UNREAD_ANSWERS = 64 * 1024;

export interface ContentServerOptions {
  library: FileLibrary;
  /** TCP port; 0 picks a free one. Default 9100. */
  port?: number;
  host?: string;
  /** Close a connection after this long without traffic. Default 30 s. */
  idleTimeoutMs?: number;
  /** Connections served at once; more are answered E 6 and closed. Default 256. */
  maxConnections?: number;
  /**
   * Caps the bytes per second of frame payload sent to all downloaders together (every
   * connection shares it). The caller owns it and closes it; none means no limit.
   */
  uploadLimiter?: RateLimiter;
}

export type ContentServerEvent =
  | { type: 'served'; name: string; offset: number; bytes: number; remote: string }
  | { type: 'refused'; code: number; reason: string; remote: string }
  | { type: 'aborted'; name: string; reason: string; remote: string };

export class ContentServer extends EventEmitter<{ event: [ContentServerEvent] }> {
  readonly #server: net.Server;
  readonly #library: FileLibrary;
  readonly #idleTimeoutMs: number;
  readonly #maxConnections: number;
  readonly #uploadLimiter: RateLimiter | undefined;
  readonly #sockets = new Set<net.Socket>();
  readonly #refusing = new Set<net.Socket>();
  #closed: Promise<void> | undefined;

  private constructor(server: net.Server, options: ContentServerOptions) {
    super();
    this.#server = server;
    this.#library = options.library;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    this.#maxConnections = options.maxConnections ?? 256;
    this.#uploadLimiter = options.uploadLimiter;
    server.on('connection', (socket) => this.#accept(socket));
  }

  static async listen(options: ContentServerOptions): Promise<ContentServer> {
    // allowHalfOpen: a downloader that shuts down its sending side after its last D still gets
    // the whole answer; #serve ends our side once the requests it sent are answered.
    const server = net.createServer({ noDelay: true, allowHalfOpen: true });
    const host = options.host ?? '0.0.0.0';
    const port = options.port ?? 9100;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(listenError('TCP', host, port, err)));
      server.listen(port, host, () => resolve());
    });
    return new ContentServer(server, options);
  }

  address(): { address: string; port: number } {
    const a = this.#server.address() as net.AddressInfo;
    return { address: a.address, port: a.port };
  }

  get connections(): number {
    return this.#sockets.size;
  }

  /** Stops accepting, closes every connection and resolves when all are gone. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= new Promise((resolve) => {
      this.#server.close(() => resolve());
      for (const s of this.#sockets) s.destroy();
      for (const s of this.#refusing) s.destroy();
    });
    return this.#closed;
  }

  #accept(socket: net.Socket): void {
    const remote = formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
    socket.on('error', () => {}); // resets from vanished downloaders are routine; 'close' follows
    if (this.#sockets.size >= this.#maxConnections) {
      // Tracked apart from the served ones (they do not count against the limit), so that a
      // client that never closes its side is still cut off, and close() does not wait for it.
      this.#refusing.add(socket);
      socket.once('close', () => this.#refusing.delete(socket));
      socket.setTimeout(this.#idleTimeoutMs, () => socket.destroy());
      socket.end(encodeError(ErrorCode.Busy, 'too many connections, try again later'));
      this.emit('event', { type: 'refused', code: ErrorCode.Busy, reason: 'connection limit', remote });
      return;
    }
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.setTimeout(this.#idleTimeoutMs, () => socket.destroy());
    void this.#serve(socket, remote);
  }

  /** One request at a time per connection; requests sent ahead wait in the reader. */
  async #serve(socket: net.Socket, remote: string): Promise<void> {
    const reader = new PduReader(socket);
    const sender = new FrameSender(socket, { limiter: this.#uploadLimiter });
    for (;;) {
      const pdu = await reader.next();
      if (!pdu) break;
      try {
        await this.#answer(socket, sender, pdu, remote);
      } catch {
        // Only a transfer under way can fail here (socket gone, file shrank): frames were
        // promised, so the only honest answer left is to drop the connection.
        socket.destroy();
        break;
      }
    }
    socket.end();
  }

  async #answer(socket: net.Socket, sender: FrameSender, pdu: Buffer, remote: string): Promise<void> {
    const request = this.#parse(pdu);
    if (typeof request === 'string') return this.#refuse(socket, ErrorCode.Malformed, request, remote);
    let file;
    try {
      file = await this.#library.resolve(request.filename);
    } catch (err) {
      if (!isPeerdexError(err)) throw err;
      const code = err.code === 'ERR_INVALID_FIELD' ? ErrorCode.Malformed : ErrorCode.NotFound;
      return this.#refuse(socket, code, err.message, remote);
    }
    const end = request.length === 0 ? file.size : request.offset + request.length;
    if (request.offset > file.size || end > file.size) {
      return this.#refuse(socket, ErrorCode.Malformed, `range ${request.offset}+${request.length} is past the end (${file.size} bytes)`, remote);
    }
    let handle: FileHandle | undefined;
    let sha256: string;
    try {
      handle = await open(file.path, 'r');
      sha256 = await this.#library.digest(file);
    } catch (err) {
      // Removed or unreadable since it was resolved: nothing promised yet, so answer E 3.
      await handle?.close();
      return this.#refuse(socket, ErrorCode.NotFound, `cannot read "${request.filename}": ${(err as NodeJS.ErrnoException).code ?? 'error'}`, remote);
    }
    const size = end - request.offset;
    try {
      socket.write(encodeContentHeader({ numPackets: packetsFor(size), size, sha256 }));
      await sender.send(handle, request.offset, size);
      this.emit('event', { type: 'served', name: request.filename, offset: request.offset, bytes: size, remote });
    } catch (err) {
      this.emit('event', { type: 'aborted', name: request.filename, reason: (err as Error).message, remote });
      throw err;
    } finally {
      await handle.close();
    }
  }

  #parse(pdu: Buffer): DownloadRequest | string {
    let fields: string[];
    try {
      const decoded = decodePdu(pdu);
      if (decoded.type !== 'D') return `expected a D request, got ${JSON.stringify(decoded.type)}`;
      fields = decoded.fields;
    } catch (err) {
      return (err as Error).message;
    }
    return parseDownloadFields(fields);
  }

  #refuse(socket: net.Socket, code: number, reason: string, remote: string): void {
    socket.write(encodeError(code, reason));
    // A client that sends garbage without reading our answers must not grow our buffers.
    if (socket.writableLength > MAX_UNREAD_ANSWERS) socket.destroy();
    this.emit('event', { type: 'refused', code, reason, remote });
  }
}

