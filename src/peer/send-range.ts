/**
 * Streams a byte range of a file as C data frames. Each frame is read straight into a buffer
 * that already holds its 9-byte header, so header and payload go out in one write with no
 * copy. A small pool of frame buffers bounds memory per connection (flat in file size) and
 * lets the next disk read overlap the previous socket write. With a shared RateLimiter, each
 * frame's bytes are paid for before it is written; the disk read overlaps that wait.
 *
 * A downloader that stops reading cannot pin a connection: while a write is pending, some
 * write must complete every `stallTimeoutMs`, or the connection is destroyed. Incoming bytes
 * do not count as progress, and neither does waiting for the limiter (nothing is pending then).
 */
import type { FileHandle } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { PeerdexError } from '../protocol/errors.js';
import { FRAME_HEADER_SIZE, FRAME_PAYLOAD_MAX, writeFrameHeader } from '../protocol/transfer-messages.js';
import type { RateLimiter } from './rate-limiter.js';

const BUFFERS_PER_CONNECTION = 2;

/** Frame buffers of one connection; acquire() waits until a write has released one. */
class FramePool {
  readonly #free: Buffer[] = [];
  readonly #waiting: ((buf: Buffer | undefined) => void)[] = [];
  #made = 0;
  #closed = false;

  acquire(): Promise<Buffer | undefined> {
    if (this.#closed) return Promise.resolve(undefined);
    const buf = this.#free.pop();
    if (buf) return Promise.resolve(buf);
    if (this.#made < BUFFERS_PER_CONNECTION) {
      this.#made++;
      return Promise.resolve(Buffer.allocUnsafe(FRAME_HEADER_SIZE + FRAME_PAYLOAD_MAX));
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  release(buf: Buffer): void {
    const waiter = this.#waiting.shift();
    if (waiter) waiter(buf);
    else this.#free.push(buf);
  }

  /** Wakes every waiter with `undefined`: the socket is gone. */
  close(): void {
    this.#closed = true;
    for (const w of this.#waiting.splice(0)) w(undefined);
  }
}

export interface FrameSenderOptions {
  /** Paid for every frame before it is written (payload bytes); none means no limit. */
  limiter?: RateLimiter | undefined;
  /** Destroys the connection when no pending write completes for this long. Default 30 s. */
  stallTimeoutMs?: number;
}

export class FrameSender {
  readonly #socket: Socket;
  readonly #limiter: RateLimiter | undefined;
  readonly #pool = new FramePool();
  readonly #stallTimeoutMs: number;
  #lastWrite: Promise<void> = Promise.resolve();
  #pendingWrites = 0;
  #stallTimer: NodeJS.Timeout | undefined;
  #stalled = false;

  constructor(socket: Socket, options: FrameSenderOptions = {}) {
    this.#socket = socket;
    this.#limiter = options.limiter;
    this.#stallTimeoutMs = options.stallTimeoutMs ?? 30_000;
    socket.once('close', () => {
      clearTimeout(this.#stallTimer);
      this.#pool.close();
    });
  }

  /**
   * Sends `header` (the C PDU), then `length` bytes from `offset` as frames 0..n-1. Resolves
   * once the last frame is handed to the kernel; rejects if the file shrinks, the socket
   * closes or the downloader stops reading.
   */
  async send(header: Buffer, file: FileHandle, offset: number, length: number): Promise<void> {
    this.#lastWrite = this.#write(header);
    let packetId = 0;
    for (let done = 0; done < length;) {
      // The buffer first: tokens are spent only once the socket can take the frame.
      const buf = await this.#pool.acquire();
      if (!buf || this.#socket.destroyed) throw this.#closedError();
      const n = Math.min(FRAME_PAYLOAD_MAX, length - done);
      const read = readFully(file, buf, FRAME_HEADER_SIZE, n, offset + done);
      if (this.#limiter) {
        await Promise.all([read, this.#limiter.take(n)]);
        // The wait may have been long: no point writing to a downloader that left meanwhile.
        if (this.#socket.destroyed) throw this.#closedError();
      } else {
        await read;
      }
      writeFrameHeader(buf, 0, packetId++, n);
      this.#lastWrite = this.#write(buf.subarray(0, FRAME_HEADER_SIZE + n), () => this.#pool.release(buf));
      done += n;
    }
    await this.#lastWrite;
  }

  /** Writes `data`, watching for a downloader that stops reading; `written` runs either way. */
  #write(data: Buffer, written?: () => void): Promise<void> {
    this.#pendingWrites++;
    this.#stallTimer ??= this.#armStall();
    const done = new Promise<void>((resolve, reject) => {
      this.#socket.write(data, (err) => {
        this.#pendingWrites--;
        clearTimeout(this.#stallTimer);
        // A write completed: progress. The clock restarts for what is still pending.
        this.#stallTimer = this.#pendingWrites > 0 && !err ? this.#armStall() : undefined;
        written?.();
        if (err) reject(this.#stalled ? this.#closedError() : new PeerdexError('ERR_CONNECTION', `write failed: ${err.message}`));
        else resolve();
      });
    });
    done.catch(() => {}); // observed by send() or by the next failing acquire
    return done;
  }

  #armStall(): NodeJS.Timeout {
    return setTimeout(() => {
      this.#stalled = true;
      this.#socket.destroy();
    }, this.#stallTimeoutMs);
  }

  #closedError(): PeerdexError {
    return this.#stalled
      ? new PeerdexError('ERR_CONNECTION', `downloader read nothing for ${this.#stallTimeoutMs / 1000} s`)
      : new PeerdexError('ERR_CONNECTION', 'downloader closed the connection');
  }
}

async function readFully(file: FileHandle, buf: Buffer, at: number, length: number, position: number): Promise<void> {
  for (let got = 0; got < length;) {
    const { bytesRead } = await file.read(buf, at + got, length - got, position + got);
    if (bytesRead === 0) throw new PeerdexError('ERR_FILE', 'file shrank while it was being sent');
    got += bytesRead;
  }
}
