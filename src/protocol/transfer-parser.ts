/**
 * Incremental parser for what a content server sends back (PROTOCOL.md section 2): a
 * 100-byte answer (C header or E), then for a C header exactly num_packets frames
 *
 *   byte 0 'C' | bytes 1..4 packet_id u32 BE | bytes 5..8 length u32 BE | payload
 *
 * Pure: fed with chunks as they arrive, split anywhere. Payloads are handed on as slices of
 * the incoming chunks (no copies). Any departure from the header's promise (a packet id out
 * of order, a frame past the announced size, stray bytes) throws ERR_MALFORMED_PDU.
 */
import { PeerdexError } from './errors.js';
import { PDU_SIZE } from './pdu.js';
import { decodeTransferAnswer, FRAME_HEADER_SIZE, readFrameHeader, type ContentHeader } from './transfer-messages.js';

export type TransferAnswer = ReturnType<typeof decodeTransferAnswer>;

export interface TransferHandlers {
  onAnswer(answer: TransferAnswer): void;
  onPayload(data: Buffer): void;
  /** Every promised frame has arrived. */
  onComplete(): void;
}

type State = 'idle' | 'answer' | 'frame-header' | 'payload';

export class TransferParser {
  readonly #h: TransferHandlers;
  #state: State = 'idle';
  readonly #scratch = Buffer.alloc(PDU_SIZE);
  #scratchUsed = 0;
  #header: ContentHeader | undefined;
  #nextPacket = 0;
  #received = 0;
  #payloadLeft = 0;

  constructor(handlers: TransferHandlers) {
    this.#h = handlers;
  }

  /** A D was sent: the next 100 bytes are its answer. */
  expectAnswer(): void {
    if (this.#state !== 'idle') throw new PeerdexError('ERR_MALFORMED_PDU', 'a transfer is still in progress');
    this.#state = 'answer';
    this.#scratchUsed = 0;
  }

  /** Bytes received so far for the current C answer. */
  get received(): number {
    return this.#received;
  }

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      switch (this.#state) {
        case 'idle':
          throw new PeerdexError('ERR_MALFORMED_PDU', `${chunk.length - pos} unexpected byte(s) after the transfer`);
        case 'answer': {
          pos = this.#fill(chunk, pos, PDU_SIZE);
          if (this.#scratchUsed === PDU_SIZE) this.#onAnswer();
          break;
        }
        case 'frame-header': {
          pos = this.#fill(chunk, pos, FRAME_HEADER_SIZE);
          if (this.#scratchUsed === FRAME_HEADER_SIZE) this.#onFrameHeader();
          break;
        }
        case 'payload': {
          const n = Math.min(this.#payloadLeft, chunk.length - pos);
          const slice = chunk.subarray(pos, pos + n);
          pos += n;
          this.#payloadLeft -= n;
          this.#received += n;
          this.#h.onPayload(slice);
          if (this.#payloadLeft === 0) this.#afterFrame();
          break;
        }
      }
    }
  }

  /** Copies bytes into the scratch buffer until it holds `want`; returns the new position. */
  #fill(chunk: Buffer, pos: number, want: number): number {
    const n = Math.min(want - this.#scratchUsed, chunk.length - pos);
    chunk.copy(this.#scratch, this.#scratchUsed, pos, pos + n);
    this.#scratchUsed += n;
    return pos + n;
  }

  #onAnswer(): void {
    const answer = decodeTransferAnswer(this.#scratch);
    this.#scratchUsed = 0;
    this.#received = 0;
    this.#nextPacket = 0;
    if (answer.type === 'E') {
      this.#state = 'idle';
      this.#h.onAnswer(answer);
      return;
    }
    this.#header = answer;
    this.#state = 'frame-header';
    this.#h.onAnswer(answer);
    if (answer.numPackets === 0) this.#finish();
  }

  #onFrameHeader(): void {
    const { packetId, length } = readFrameHeader(this.#scratch, 0);
    this.#scratchUsed = 0;
    const header = this.#header!;
    if (packetId !== this.#nextPacket) throw new PeerdexError('ERR_MALFORMED_PDU', `expected packet ${this.#nextPacket}, got ${packetId}`);
    if (this.#received + length > header.size) {
      throw new PeerdexError('ERR_MALFORMED_PDU', `packet ${packetId} runs past the announced size of ${header.size} bytes`);
    }
    this.#payloadLeft = length;
    this.#state = 'payload';
  }

  #afterFrame(): void {
    const header = this.#header!;
    this.#nextPacket++;
    if (this.#nextPacket === header.numPackets) {
      if (this.#received !== header.size) {
        throw new PeerdexError('ERR_MALFORMED_PDU', `${header.numPackets} packets carried ${this.#received} bytes, the header said ${header.size}`);
      }
      this.#finish();
    } else if (this.#received === header.size) {
      throw new PeerdexError('ERR_MALFORMED_PDU', `all ${header.size} bytes came in ${this.#nextPacket} of ${header.numPackets} packets`);
    } else {
      this.#state = 'frame-header';
    }
  }

  #finish(): void {
    this.#state = 'idle';
    this.#header = undefined;
    this.#h.onComplete();
  }
}
