/**
 * Cuts a TCP byte stream into 100-byte PDUs, one awaited at a time. Memory stays bounded: the
 * socket is paused while a few requests are already waiting, so a client that floods requests
 * holds at most one socket read (64 KiB) here. A PDU must be whole within `deadlineMs` of its
 * first byte (a deadline that later bytes do not reset), so a client trickling a byte at a
 * time cannot keep a connection busy forever.
 */
import type { Socket } from 'node:net';
import { PDU_SIZE } from '../protocol/pdu.js';

/** Bytes of whole PDUs waiting to be taken before the socket is paused. */
const MAX_WAITING = 8 * PDU_SIZE;
const EMPTY = Buffer.alloc(0);

export interface PduReaderOptions {
  /** How long a PDU may take to arrive, from its first byte. Default 10 s. */
  deadlineMs?: number;
  /** Called when a PDU misses its deadline (the reader has stopped); the caller closes the socket. */
  onLate?: () => void;
}

export class PduReader {
  readonly #socket: Socket;
  readonly #deadlineMs: number;
  readonly #onLate: () => void;
  /** Bytes received and not yet taken, starting at a PDU boundary. */
  #pending: Buffer = EMPTY;
  /** No more bytes will come (the peer closed its side); whole PDUs received are still taken. */
  #ended = false;
  #stopped = false;
  #wake: (() => void) | undefined;
  #deadline: NodeJS.Timeout | undefined;
  readonly #onData = (chunk: Buffer) => this.#received(chunk);

  constructor(socket: Socket, options: PduReaderOptions = {}) {
    this.#socket = socket;
    this.#deadlineMs = options.deadlineMs ?? 10_000;
    this.#onLate = options.onLate ?? (() => socket.destroy());
    socket.on('data', this.#onData);
    socket.once('end', () => {
      this.#ended = true;
      clearTimeout(this.#deadline);
      this.#wake?.();
    });
    socket.once('close', () => this.stop());
  }

  /** The next whole PDU, or undefined once the peer has closed or the reader was stopped (a trailing partial is dropped). */
  async next(): Promise<Buffer | undefined> {
    while (this.#pending.length < PDU_SIZE) {
      if (this.#ended || this.#stopped) return undefined;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
    if (this.#stopped) return undefined;
    const pdu = Buffer.from(this.#pending.subarray(0, PDU_SIZE)); // copy: do not pin the chunk
    this.#pending = this.#pending.length === PDU_SIZE ? EMPTY : this.#pending.subarray(PDU_SIZE);
    if (this.#pending.length < MAX_WAITING && this.#socket.isPaused()) {
      this.#socket.resume();
      // A partial PDU held while we were not reading gets a whole new deadline.
      this.#restartDeadline();
    }
    return pdu;
  }

  /** Reads no more: `next()` returns undefined from now on. Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#socket.off('data', this.#onData);
    this.#pending = EMPTY;
    clearTimeout(this.#deadline);
    this.#wake?.();
  }

  #received(chunk: Buffer): void {
    const before = this.#pending.length % PDU_SIZE; // bytes of the PDU under way, if any
    this.#pending = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    const stillSamePdu = before > 0 && before + chunk.length < PDU_SIZE;
    if (this.#pending.length >= MAX_WAITING) this.#socket.pause();
    if (!stillSamePdu || this.#socket.isPaused()) this.#restartDeadline();
    this.#wake?.();
  }

  /** Runs the deadline while a PDU is under way and we are reading; otherwise clears it. */
  #restartDeadline(): void {
    clearTimeout(this.#deadline);
    this.#deadline = undefined;
    if (this.#pending.length % PDU_SIZE === 0 || this.#socket.isPaused() || this.#ended || this.#stopped) return;
    this.#deadline = setTimeout(() => {
      this.stop();
      this.#onLate();
    }, this.#deadlineMs);
  }
}
