/**
 * Cuts a TCP byte stream into 100-byte PDUs, one awaited at a time. Pauses the socket while
 * a few requests are already waiting, so a client that floods requests cannot grow memory.
 */
import type { Socket } from 'node:net';
import { PDU_SIZE } from '../protocol/pdu.js';

const MAX_QUEUED = 8;

export class PduReader {
  readonly #socket: Socket;
  readonly #queue: Buffer[] = [];
  #partial: Buffer = Buffer.alloc(0);
  #ended = false;
  #wake: (() => void) | undefined;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    const end = () => {
      this.#ended = true;
      this.#wake?.();
    };
    socket.once('end', end);
    socket.once('close', end);
  }

  /** The next whole PDU, or undefined once the peer has closed (a trailing partial is dropped). */
  async next(): Promise<Buffer | undefined> {
    while (this.#queue.length === 0) {
      if (this.#ended) return undefined;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
    const pdu = this.#queue.shift()!;
    if (this.#queue.length < MAX_QUEUED && this.#socket.isPaused()) this.#socket.resume();
    return pdu;
  }

  #onData(chunk: Buffer): void {
    let data = this.#partial.length > 0 ? Buffer.concat([this.#partial, chunk]) : chunk;
    while (data.length >= PDU_SIZE) {
      this.#queue.push(Buffer.from(data.subarray(0, PDU_SIZE))); // copy: do not pin the chunk
      data = data.subarray(PDU_SIZE);
    }
    this.#partial = Buffer.from(data);
    if (this.#queue.length >= MAX_QUEUED) this.#socket.pause();
    this.#wake?.();
  }
}
