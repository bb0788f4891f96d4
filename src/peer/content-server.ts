/**
 * The content server: answers D requests over TCP with an E PDU, or a C header and C frames
 * (PROTOCOL.md section 2). Each connection is served by its own async loop, so a slow or
 * silent downloader only ever holds up itself. Abuse is bounded: connections per source and
 * in all (ConnectionSlots: the one idle longest makes room for a newcomer), a deadline for
 * each request to arrive whole (PduReader), a downloader that stops reading is cut off
 * (FrameSender), and files are opened so nothing outside the folder is ever sent (FileLibrary).
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { ErrorCode, isPeerdexError, listenError } from '../protocol/errors.js';
import { formatHostPort } from '../protocol/fields.js';
import { encodeError } from '../protocol/index-messages.js';
import { decodePdu } from '../protocol/pdu.js';
import { encodeContentHeader, packetsFor, parseDownloadFields, type DownloadRequest } from '../protocol/transfer-messages.js';
import { ConnectionSlots, type Slot } from './connection-slots.js';
import type { FileLibrary, OpenedFile } from './file-library.js';
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
  /**
   * Close a connection that has no request answered for this long (bytes of an unfinished
   * request do not count), and one whose downloader reads nothing of an answer for this long.
   * Default 30 s.
   */
  idleTimeoutMs?: number;
  /**
   * Connections served at once. At the limit the connection idle longest is closed to make
   * room; only when every connection is busy answering is a newcomer answered E 6 and closed.
   * Default 256.
   */
  maxConnections?: number;
  /** Connections from one address; more are answered E 6 and closed. Default 16. */
  maxConnectionsPerSource?: number;
  /** A D PDU must arrive whole within this long of its first byte, or the connection is closed. Default 10 s. */
  requestTimeoutMs?: number;
  /**
   * Caps the bytes per second of frame payload sent to all downloaders together (every
   * connection shares it). The caller owns it and closes it; none means no limit.
   */
  uploadLimiter?: RateLimiter;
}

/** One admitted connection. */
interface Connection {
  socket: net.Socket;
  remote: string;
  slot: Slot;
  reader: PduReader;
  /** An answer is being written: no E PDU may be slipped in. */
  busy: boolean;
  /** What this connection was sent, per name, for one summary when it ends. */
  sent: Map<string, SentSummary>;
}

/** What one connection was sent of one file. */
export interface SentSummary {
  name: string;
  /** Bytes of the ranges sent in full. */
  bytes: number;
  ranges: number;
  /** Why the last transfer stopped early, if it did. */
  stopped?: string;
}

/** A transfer under way, for status pages (read on demand, costs nothing to keep). */
export interface Upload {
  name: string;
  remote: string;
  offset: number;
  size: number;
  startedAt: number;
}

export type ContentServerEvent =
  | { type: 'served'; name: string; offset: number; bytes: number; remote: string }
  | { type: 'refused'; code: number; reason: string; remote: string }
  | { type: 'aborted'; name: string; reason: string; remote: string }
  /**
   * A connection ended: what it was sent, per file (one swarm downloader asks for many ranges;
   * a log wants one line for them, not one per range).
   */
  | { type: 'connection-done'; remote: string; files: SentSummary[] };

export class ContentServer extends EventEmitter<{ event: [ContentServerEvent] }> {
  readonly #server: net.Server;
  readonly #library: FileLibrary;
  readonly #idleTimeoutMs: number;
  readonly #requestTimeoutMs: number;
  readonly #maxConnections: number;
  readonly #uploadLimiter: RateLimiter | undefined;
  readonly #slots: ConnectionSlots;
  readonly #sockets = new Set<net.Socket>();
  /** Refused or shut-out connections, left a moment to read their E PDU; oldest first. */
  readonly #lingering = new Set<net.Socket>();
  readonly #uploads = new Set<Upload>();
  #bytesSent = 0;
  #closed: Promise<void> | undefined;

  private constructor(server: net.Server, options: ContentServerOptions) {
    super();
    this.#server = server;
    this.#library = options.library;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.#maxConnections = options.maxConnections ?? 256;
    this.#uploadLimiter = options.uploadLimiter;
    this.#slots = new ConnectionSlots({
      max: this.#maxConnections,
      maxPerSource: options.maxConnectionsPerSource ?? 16,
      idleTimeoutMs: this.#idleTimeoutMs,
    });
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

  /**
   * File bytes of the ranges sent in full since listening (frame payload, not headers). A
   * transfer the downloader cuts short (a probe that reads only the header, a cancel) adds
   * nothing: what reached it is unknown.
   */
  get bytesSent(): number {
    return this.#bytesSent;
  }

  /** The transfers under way. */
  get uploads(): Upload[] {
    return [...this.#uploads];
  }

  /** Stops accepting, closes every connection and resolves when all are gone. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= new Promise((resolve) => {
      this.#server.close(() => resolve());
      for (const s of this.#sockets) s.destroy();
      for (const s of this.#lingering) s.destroy();
    });
    return this.#closed;
  }

  #accept(socket: net.Socket): void {
    const remote = formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
    socket.on('error', () => {}); // resets from vanished downloaders are routine; 'close' follows
    const source = (socket.remoteAddress ?? '?').replace(/^::ffff:/, '');
    // Assigned once, after the callbacks below that read it are made.
    // eslint-disable-next-line prefer-const
    let c: Connection | undefined;
    const slot = this.#slots.admit(source, (end) => {
      if (end === 'idle') socket.destroy();
      else if (c) this.#shutOut(c, ErrorCode.Busy, 'closed to make room for a new connection (this one was idle longest)');
    });
    if (typeof slot === 'string') return this.#shutOut({ socket, remote }, ErrorCode.Busy, slot);
    const reader = new PduReader(socket, {
      deadlineMs: this.#requestTimeoutMs,
      onLate: () => {
        const reason = `request not complete within ${this.#requestTimeoutMs / 1000} s`;
        if (c!.busy) socket.destroy();
        else this.#shutOut(c!, ErrorCode.Malformed, reason);
      },
    });
    c = { socket, remote, slot, reader, busy: false, sent: new Map() };
    this.#sockets.add(socket);
    socket.once('close', () => {
      slot.release();
      this.#sockets.delete(socket);
    });
    void this.#serve(c);
  }

  /** One request at a time per connection; requests sent ahead wait in the reader. */
  async #serve(c: Connection): Promise<void> {
    const sender = new FrameSender(c.socket, { limiter: this.#uploadLimiter, stallTimeoutMs: this.#idleTimeoutMs });
    for (;;) {
      const pdu = await c.reader.next();
      if (!pdu) break;
      c.slot.busy();
      c.busy = true;
      try {
        await this.#answer(c, sender, pdu);
      } catch {
        // Only a transfer under way can fail here (socket gone, file shrank, downloader not
        // reading): frames were promised, so the only honest answer left is to drop the connection.
        c.socket.destroy();
        break;
      }
      c.busy = false;
      c.slot.idle();
    }
    if (!c.socket.writableEnded) c.socket.end();
    if (c.sent.size > 0) this.emit('event', { type: 'connection-done', remote: c.remote, files: [...c.sent.values()] });
  }

  #record(c: Connection, name: string, bytes: number, stopped?: string): void {
    let s = c.sent.get(name);
    if (!s) c.sent.set(name, (s = { name, bytes: 0, ranges: 0 }));
    if (stopped === undefined) {
      s.bytes += bytes;
      s.ranges++;
    } else s.stopped = stopped;
  }

  async #answer(c: Connection, sender: FrameSender, pdu: Buffer): Promise<void> {
    const request = this.#parse(pdu);
    if (typeof request === 'string') return this.#refuse(c, ErrorCode.Malformed, request);
    const opened = await this.#open(c, request.filename);
    if (!opened) return;
    const { file, handle } = opened;
    try {
      const end = request.length === 0 ? file.size : request.offset + request.length;
      if (request.offset > file.size || end > file.size) {
        return this.#refuse(c, ErrorCode.Malformed, `range ${request.offset}+${request.length} is past the end (${file.size} bytes)`);
      }
      let sha256: string;
      try {
        sha256 = await this.#library.digest(file, handle);
      } catch (err) {
        // Unreadable: nothing promised yet, so answer E 3.
        return this.#refuse(c, ErrorCode.NotFound, `cannot read "${request.filename}": ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      }
      const size = end - request.offset;
      const upload: Upload = { name: request.filename, remote: c.remote, offset: request.offset, size, startedAt: Date.now() };
      this.#uploads.add(upload);
      try {
        await sender.send(encodeContentHeader({ numPackets: packetsFor(size), size, sha256 }), handle, request.offset, size);
        this.#bytesSent += size;
        this.#record(c, request.filename, size);
        this.emit('event', { type: 'served', name: request.filename, offset: request.offset, bytes: size, remote: c.remote });
      } catch (err) {
        this.#record(c, request.filename, 0, (err as Error).message);
        this.emit('event', { type: 'aborted', name: request.filename, reason: (err as Error).message, remote: c.remote });
        throw err;
      } finally {
        this.#uploads.delete(upload);
      }
    } finally {
      await handle.close();
    }
  }

  /** The requested file opened, or undefined once the request is answered with an E. */
  async #open(c: Connection, name: string): Promise<OpenedFile | undefined> {
    try {
      return await this.#library.open(name);
    } catch (err) {
      if (!isPeerdexError(err)) throw err;
      this.#refuse(c, err.code === 'ERR_INVALID_FIELD' ? ErrorCode.Malformed : ErrorCode.NotFound, err.message);
      return undefined;
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

  #refuse(c: Connection, code: number, reason: string): void {
    c.socket.write(encodeError(code, reason));
    // A client that sends garbage without reading our answers must not grow our buffers.
    if (c.socket.writableLength > MAX_UNREAD_ANSWERS) c.socket.destroy();
    this.emit('event', { type: 'refused', code, reason, remote: c.remote });
  }

  /**
   * Answers one last E and closes our side. The connection no longer counts against the limits
   * but lingers (at most the idle timeout, and at most `maxConnections` of them, oldest cut
   * first) so the client can read the answer before we close, which would otherwise reset it.
   */
  #shutOut(c: Pick<Connection, 'socket' | 'remote'> & Partial<Connection>, code: number, reason: string): void {
    const { socket } = c;
    c.reader?.stop();
    c.slot?.release();
    this.#sockets.delete(socket);
    this.#lingering.add(socket);
    if (this.#lingering.size > this.#maxConnections) {
      const oldest = this.#lingering.values().next().value!;
      this.#lingering.delete(oldest);
      oldest.destroy();
    }
    const timer = setTimeout(() => socket.destroy(), this.#idleTimeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      this.#lingering.delete(socket);
    });
    socket.end(encodeError(code, reason));
    this.emit('event', { type: 'refused', code, reason, remote: c.remote });
  }
}
