/**
 * A small UDP test client: sends PDUs to a server over a real dgram socket and collects the
 * replies in arrival order. Every wait is bounded; `close()` is idempotent.
 */
import dgram from 'node:dgram';
import { PDU_SIZE } from '../../src/protocol/pdu.js';

export interface Received {
  msg: Buffer;
  from: dgram.RemoteInfo;
}

export class UdpClient {
  readonly socket: dgram.Socket;
  readonly #queue: Received[] = [];
  #waiter: (() => void) | undefined;
  #closed = false;

  private constructor(socket: dgram.Socket) {
    this.socket = socket;
    socket.on('message', (msg, from) => {
      this.#queue.push({ msg, from });
      this.#waiter?.();
    });
  }

  /** Binds a client socket on `host` (127.0.0.1 unless told), port 0. */
  static async open(host = '127.0.0.1'): Promise<UdpClient> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new UdpClient(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** Replies received and not yet taken. */
  get pending(): number {
    return this.#queue.length;
  }

  send(buf: Uint8Array, port: number, host = '127.0.0.1'): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(buf, port, host, (err) => (err ? reject(err) : resolve())));
  }

  /** The next datagram, or undefined when none arrives within `timeoutMs`. */
  async next(timeoutMs = 2000): Promise<Buffer | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.#queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#waiter = undefined;
    }
    return this.#queue.shift()!.msg;
  }

  /** Exactly `count` datagrams; throws when fewer arrive within `timeoutMs`. */
  async take(count: number, timeoutMs = 2000): Promise<Buffer[]> {
    const deadline = Date.now() + timeoutMs;
    const out: Buffer[] = [];
    while (out.length < count) {
      const msg = await this.next(Math.max(0, deadline - Date.now()));
      if (!msg) throw new Error(`expected ${count} datagrams, got ${out.length} within ${timeoutMs} ms`);
      out.push(msg);
    }
    return out;
  }

  /** Sends one PDU and returns the first `count` replies. */
  async request(buf: Uint8Array, port: number, count = 1, host = '127.0.0.1', timeoutMs = 2000): Promise<Buffer[]> {
    await this.send(buf, port, host);
    return this.take(count, timeoutMs);
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** A 100-byte PDU from a type letter and raw data text (no field checks: tests send bad ones). */
export function rawPdu(type: string, data: string | Uint8Array = ''): Buffer {
  const out = Buffer.alloc(PDU_SIZE);
  out.write(type, 0, 1, 'latin1');
  if (typeof data === 'string') out.write(data, 1, PDU_SIZE - 1, 'utf8');
  else out.set(data.subarray(0, PDU_SIZE - 1), 1);
  return out;
}

/** The type letter and data text of a PDU (data up to the first NUL). */
export function pduText(buf: Buffer): { type: string; data: string } {
  const end = buf.indexOf(0, 1);
  return { type: String.fromCharCode(buf[0]), data: buf.subarray(1, end === -1 ? PDU_SIZE : end).toString('utf8') };
}
