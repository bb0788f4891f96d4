/**
 * FakeHolder: a content server (PROTOCOL.md section 2) on 127.0.0.1 port 0 that serves one
 * in-memory file and can be told to misbehave, so that downloader tests can meet lying,
 * slow, silent or broken holders without a real ContentServer.
 *
 * Requests are parsed with the project's own D rules (the fake is there to test downloaders,
 * not the parser); answers are built byte by byte from the protocol text, so that a bug in
 * the project's encoders cannot hide in the fake too.
 */
import net from 'node:net';
import { decodePdu } from '../../src/protocol/pdu.js';
import { parseDownloadFields } from '../../src/protocol/transfer-messages.js';
import { MiB, PDU_BYTES, rawPdu, sha256Text } from './peer-fixtures.js';

/** How a FakeHolder answers; read once per D request, so setBehaviour affects the next one. */
export type Misbehaviour =
  | { kind: 'honest' }
  /** Right header, every payload byte flipped (xor 0xff). */
  | { kind: 'wrong-bytes' }
  /** Honest for the first `bytes` payload bytes sent in total (across requests), flipped after. */
  | { kind: 'wrong-bytes-after'; bytes: number }
  /** The header claims `size` (num_packets to match) with the right sha256; the frames are the real range's. */
  | { kind: 'header-size'; size: number }
  /** The header's sha256 is that of other content; the frames are honest. */
  | { kind: 'other-digest' }
  /** Honest header, then each frame head at once and its payload one byte at a time at this rate. */
  | { kind: 'trickle'; bytesPerSecond: number }
  /** The header, then nothing: the connection stays open and later requests get no answer. */
  | { kind: 'stall-after-header' }
  /** Honest frames, then one extra frame (packet_id num_packets) beyond the announced size. */
  | { kind: 'past-size' }
  /** The second frame (the first if there is only one) carries packet_id + 1. */
  | { kind: 'wrong-frame-id' }
  /** Honest, but destroys the socket once `bytes` payload bytes have been sent in total (a frame may be cut). */
  | { kind: 'close-after'; bytes: number }
  /** Every D is answered E 3. */
  | { kind: 'refuse' };

export interface FakeHolderOptions {
  name: string;
  content: Buffer;
  behaviour?: Misbehaviour;
  /** Payload bytes per frame, 1 .. 1 MiB; small by default so that several frames flow. */
  frameSize?: number;
}

/** A D request as received: `length` as requested (0 = to the end). */
export interface ReceivedRequest {
  name: string;
  offset: number;
  length: number;
}

export const DEFAULT_FRAME_SIZE = 64 * 1024;

/** Writes with backpressure; resolves false once the socket is gone (the caller stops sending). */
function send(socket: net.Socket, data: Uint8Array): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(false);
  if (socket.write(data)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve(!socket.destroyed);
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

const errorPdu = (code: number, description: string): Buffer => rawPdu('E', `${code};${description}`); // rawPdu cuts at 99 bytes

export class FakeHolder {
  readonly name: string;
  readonly content: Buffer;
  /** The whole content's digest, base64url without padding. */
  readonly sha256: string;
  readonly frameSize: number;
  readonly port: number;
  /** Every well-formed D received, in order of arrival (malformed ones are answered E 4 only). */
  readonly requests: ReceivedRequest[] = [];
  #behaviour: Misbehaviour;
  #bytesSent = 0;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  /** Pending trickle sleeps: close() clears the timers and wakes the sleepers so they stop. */
  readonly #sleeps = new Map<NodeJS.Timeout, () => void>();
  #closing: Promise<void> | undefined;

  private constructor(opts: FakeHolderOptions, server: net.Server, port: number) {
    this.name = opts.name;
    this.content = opts.content;
    this.sha256 = sha256Text(opts.content);
    this.frameSize = opts.frameSize ?? DEFAULT_FRAME_SIZE;
    this.#behaviour = opts.behaviour ?? { kind: 'honest' };
    this.#server = server;
    this.port = port;
  }

  /** Listens on 127.0.0.1, port 0. */
  static async start(opts: FakeHolderOptions): Promise<FakeHolder> {
    const frameSize = opts.frameSize ?? DEFAULT_FRAME_SIZE;
    if (!Number.isInteger(frameSize) || frameSize < 1 || frameSize > MiB) throw new RangeError(`frameSize must be 1..${MiB}, got ${frameSize}`);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const holder = new FakeHolder(opts, server, (server.address() as net.AddressInfo).port);
    server.on('connection', (socket) => holder.#accept(socket));
    return holder;
  }

  /** Payload bytes written to sockets so far, over all connections (frame heads not counted). */
  get bytesSent(): number {
    return this.#bytesSent;
  }

  /** Applies from the next D request on (an answer under way keeps the behaviour it started with). */
  setBehaviour(b: Misbehaviour): void {
    this.#behaviour = b;
  }

  /** Idempotent: destroys every open socket, stops trickles, resolves when the server is closed. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      for (const socket of this.#sockets) socket.destroy();
      for (const [timer, wake] of this.#sleeps) {
        clearTimeout(timer);
        wake();
      }
      this.#sleeps.clear();
    });
    return this.#closing;
  }

  #accept(socket: net.Socket): void {
    if (this.#closing) return void socket.destroy();
    this.#sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => {}); // resets from clients that hang up are expected
    socket.once('close', () => this.#sockets.delete(socket));
    // Requests are answered one at a time, in order, like a real server on one connection.
    let pending: Buffer = Buffer.alloc(0);
    let busy = false;
    let stopped = false;
    const pump = async (): Promise<void> => {
      busy = true;
      while (!stopped && pending.length >= PDU_BYTES && !socket.destroyed) {
        const pdu = pending.subarray(0, PDU_BYTES);
        pending = pending.subarray(PDU_BYTES);
        stopped = !(await this.#answer(socket, pdu).catch(() => {
          socket.destroy(); // a bug in the fake must show as a hang-up, not as a hung test
          return false;
        }));
      }
      busy = false;
    };
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      if (!busy) void pump();
    });
  }

  /** Answers one PDU; false means "send nothing more on this connection". */
  async #answer(socket: net.Socket, pdu: Buffer): Promise<boolean> {
    let request: ReturnType<typeof parseDownloadFields>;
    try {
      const { type, fields } = decodePdu(pdu);
      request = type === 'D' ? parseDownloadFields(fields) : `expected a D PDU, got ${JSON.stringify(type)}`;
    } catch (err) {
      request = (err as Error).message;
    }
    if (typeof request === 'string') return send(socket, errorPdu(4, request));
    const { filename: name, offset, length } = request;
    this.requests.push({ name, offset, length });
    const b = this.#behaviour;
    if (b.kind === 'refuse') return send(socket, errorPdu(3, 'refused'));
    if (name !== this.name) return send(socket, errorPdu(3, `no such file: ${name}`));
    const end = length === 0 ? this.content.length : offset + length;
    if (offset > this.content.length || end > this.content.length) return send(socket, errorPdu(4, 'range past the end'));

    const range = this.content.subarray(offset, end);
    const size = b.kind === 'header-size' ? b.size : range.length;
    const digest = b.kind === 'other-digest' ? sha256Text(Buffer.concat([this.content, Buffer.from('other')])) : this.sha256;
    if (!(await send(socket, rawPdu('C', `${Math.ceil(size / this.frameSize)};${size};${digest}`)))) return false;
    if (b.kind === 'stall-after-header') return false;

    const frames = Math.ceil(range.length / this.frameSize);
    const wrongId = b.kind === 'wrong-frame-id' ? Math.min(1, frames - 1) : -1;
    for (let id = 0; id < frames; id++) {
      const payload = range.subarray(id * this.frameSize, (id + 1) * this.frameSize);
      if (!(await this.#frame(socket, b, id === wrongId ? id + 1 : id, payload))) return false;
    }
    if (b.kind === 'past-size') return this.#frame(socket, b, frames, Buffer.from('past the end'));
    return true;
  }

  /** Sends one frame as `b` wants it; false once the socket is gone or was closed on purpose. */
  async #frame(socket: net.Socket, b: Misbehaviour, id: number, payload: Buffer): Promise<boolean> {
    const start = this.#bytesSent;
    let body = payload;
    if (b.kind === 'wrong-bytes' || b.kind === 'wrong-bytes-after') {
      const from = b.kind === 'wrong-bytes' ? 0 : Math.max(0, b.bytes - start);
      body = Buffer.from(payload);
      for (let i = from; i < body.length; i++) body[i] ^= 0xff;
    }
    const cut = b.kind === 'close-after' && start + payload.length >= b.bytes;
    if (cut) body = body.subarray(0, Math.max(0, b.bytes - start));

    // The head always announces the whole payload, so a cut frame looks truncated to the client.
    const head = Buffer.alloc(9);
    head[0] = 0x43;
    head.writeUInt32BE(id, 1);
    head.writeUInt32BE(payload.length, 5);
    if (b.kind === 'trickle') {
      if (!(await send(socket, head))) return false;
      for (let i = 0; i < body.length; i++) {
        await this.#sleep(1000 / b.bytesPerSecond);
        if (!(await send(socket, body.subarray(i, i + 1)))) return false;
        this.#bytesSent++;
      }
      return true;
    }
    if (!(cut && body.length === 0) && !(await send(socket, Buffer.concat([head, body])))) return false;
    this.#bytesSent += body.length;
    if (!cut) return true;
    // end() flushes what was written before the socket is destroyed (destroy alone drops it).
    socket.end(() => socket.destroy());
    return false;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#closing) return resolve();
      const timer = setTimeout(() => {
        this.#sleeps.delete(timer);
        resolve();
      }, ms);
      timer.unref();
      this.#sleeps.set(timer, resolve);
    });
  }
}
