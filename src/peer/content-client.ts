/**
 * A downloader's TCP connection to one content server: sends D requests and pumps the C
 * frames of each answer into a writable sink, respecting the sink's backpressure.
 */
import net from 'node:net';
import type { Writable } from 'node:stream';
import { ErrorCode, PeerdexError } from '../protocol/errors.js';
import { formatHostPort } from '../protocol/fields.js';
import type { ContentHeader } from '../protocol/transfer-messages.js';
import { encodeDownload } from '../protocol/transfer-messages.js';
import { TransferParser, type TransferAnswer } from '../protocol/transfer-parser.js';
import { ReadBuffers } from './read-buffers.js';

// Socket reads go into 1 MiB buffers instead of Node's 64 KiB (see read-buffers.ts): a read
// costs a system call and a callback whatever its size, and the main thread also has the
// SHA-256 to do (1 MiB reads: client CPU 2.9 -> 2.5 s per GiB, see docs/benchmarks.md).

export interface ContentConnectionOptions {
  /** Give up when the holder sends nothing for this long. Default 15 s. */
  idleTimeoutMs?: number;
}

export class ContentConnection {
  readonly label: string;
  readonly #socket: net.Socket;
  readonly #parser: TransferParser;
  #failure: PeerdexError | undefined;
  // Exactly one of these is waiting at a time: the answer, then the end of the frames.
  #onAnswer: ((a: TransferAnswer) => void) | undefined;
  #onPayload: ((data: Buffer) => void) | undefined;
  #onComplete: (() => void) | undefined;
  // Frames that arrive in the same chunk as the header, before receive() is called.
  #early: Buffer[] = [];
  #earlyComplete = false;
  #onFailure: ((err: PeerdexError) => void) | undefined;

  readonly #buffers: ReadBuffers;

  private constructor(socket: net.Socket, label: string, idleTimeoutMs: number, reads: { deliver: (chunk: Buffer) => void }, buffers: ReadBuffers) {
    this.#socket = socket;
    this.label = label;
    this.#buffers = buffers;
    this.#parser = new TransferParser({
      onAnswer: (a) => this.#onAnswer?.(a),
      onPayload: (d) => {
        buffers.hold(d);
        if (this.#onPayload) this.#onPayload(d);
        else this.#early.push(d);
      },
      onComplete: () => (this.#onComplete ? this.#onComplete() : (this.#earlyComplete = true)),
    });
    reads.deliver = (chunk: Buffer) => {
      try {
        this.#parser.push(chunk);
      } catch (err) {
        this.#fail(new PeerdexError('ERR_INTEGRITY', `holder ${label} broke the protocol: ${(err as Error).message}`));
      }
    };
    socket.setTimeout(idleTimeoutMs, () => this.#fail(new PeerdexError('ERR_CONNECTION', `holder ${label} sent nothing for ${idleTimeoutMs / 1000} s`)));
    socket.on('error', (err) => this.#fail(new PeerdexError('ERR_CONNECTION', `holder ${label} connection failed: ${err.message}`)));
    socket.on('close', () => this.#fail(new PeerdexError('ERR_CONNECTION', `holder ${label} closed the connection`)));
  }

  static open(host: string, port: number, options: ContentConnectionOptions = {}): Promise<ContentConnection> {
    const label = formatHostPort(host, port);
    return new Promise((resolve, reject) => {
      // Every read is handed to `deliver`, which the connection sets once it exists (it is
      // created on 'connect', before anything can be read).
      const buffers = new ReadBuffers();
      const reads = { deliver: (_chunk: Buffer): void => {} };
      const onread = {
        buffer: buffers.next,
        callback: (n: number) => {
          reads.deliver(buffers.take(n));
          buffers.settle();
          return true; // pausing is done with socket.pause(), by the connection
        },
      };
      const socket = net.connect({ host, port, noDelay: true, onread });
      const onError = (err: NodeJS.ErrnoException) => {
        socket.destroy();
        const why = err.code === 'ECONNREFUSED' ? 'refused the connection' : `could not be reached (${err.code ?? err.message})`;
        reject(new PeerdexError('ERR_CONNECTION', `holder ${label} ${why}`, { cause: err }));
      };
      socket.once('error', onError);
      socket.setTimeout(options.idleTimeoutMs ?? 15_000, () => onError(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
      socket.once('connect', () => {
        socket.off('error', onError);
        socket.setTimeout(0);
        resolve(new ContentConnection(socket, label, options.idleTimeoutMs ?? 15_000, reads, buffers));
      });
    });
  }

  /**
   * Sends D and waits for the C header. A refusal becomes ERR_NOT_FOUND (E 3) or ERR_REMOTE
   * with the holder's E code.
   */
  request(filename: string, offset = 0, length = 0): Promise<ContentHeader> {
    return new Promise<ContentHeader>((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      this.#onFailure = reject;
      this.#onAnswer = (answer) => {
        this.#onAnswer = undefined;
        this.#onFailure = undefined;
        if (answer.type === 'C') {
          // Hold the frames in the kernel until receive() has a sink for them.
          this.#socket.pause();
          return resolve(answer);
        }
        const text = `holder ${this.label} refused "${filename}": E ${answer.code} ${answer.description}`;
        reject(new PeerdexError(answer.code === ErrorCode.NotFound ? 'ERR_NOT_FOUND' : 'ERR_REMOTE', text, { remoteCode: answer.code }));
      };
      this.#early = [];
      this.#earlyComplete = false;
      this.#parser.expectAnswer();
      this.#socket.write(encodeDownload(filename, offset, length));
    });
  }

  /**
   * Writes the frames of the answer just received into `sink`, calling `onData` with each
   * slice after it is queued. Resolves when every promised frame has arrived.
   */
  receive(sink: Writable, onData?: (data: Buffer) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const readOn = () => this.#socket.resume();
      const write = (data: Buffer) => {
        onData?.(data);
        if (!sink.write(data) && !this.#socket.isPaused()) {
          this.#socket.pause();
          sink.once('drain', readOn);
        }
      };
      // Once every frame is in, the socket reads on (the next answer) whatever the sink does:
      // a sink that is ended before it drains never says 'drain'.
      const answered = () => {
        sink.off('drain', readOn);
        if (!this.#failure) this.#socket.resume();
      };
      // Frames that came with the header are written even if the holder has gone since:
      // they are good data and a later run can resume after them.
      for (const data of this.#early.splice(0)) write(data);
      if (this.#earlyComplete) {
        // request() paused the socket; the answer is all here, so read the next one again.
        answered();
        return resolve();
      }
      if (this.#failure) return reject(this.#failure);
      this.#socket.resume();
      this.#onFailure = reject;
      this.#onPayload = write;
      this.#onComplete = () => {
        this.#onPayload = undefined;
        this.#onComplete = undefined;
        this.#onFailure = undefined;
        answered();
        resolve();
      };
    });
  }

  /**
   * The consumer is done with a payload slice it was given (it is written): its memory may be
   * read into again. Optional: a slice never released is simply not reused.
   */
  release(data: Buffer): void {
    this.#buffers.release(data);
  }

  /** Closes the connection; a request or receive still waiting rejects. Idempotent. */
  close(): void {
    this.#fail(new PeerdexError('ERR_CONNECTION', `connection to ${this.label} closed`));
  }

  #fail(err: PeerdexError): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#socket.destroy();
    const reject = this.#onFailure;
    this.#onFailure = undefined;
    reject?.(err);
  }
}
