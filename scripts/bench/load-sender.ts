/**
 * The load generator's sockets (load-generator.ts): sends requests on several UDP sockets and
 * matches each reply to its request by the name it carries (the index's S and A replies name
 * the file; the bare dgram server echoes the request). A name is in flight at most once per
 * socket; requests unanswered after `lossMs` are counted lost and handed back by sweep().
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { BENCH_NAME_PREFIX } from './measure.js';

const PREFIX = Buffer.from(BENCH_NAME_PREFIX);

/** The name index a reply is about, read from its bytes; -1 when there is none (an E). */
export function nameIndexOf(reply: Buffer): number {
  const at = reply.indexOf(PREFIX, 1);
  if (at < 0) return -1;
  let value = 0;
  for (let i = at + PREFIX.length; i < reply.length; i++) {
    const d = reply[i] - 48;
    if (d < 0 || d > 9) break;
    value = value * 10 + d;
  }
  return value;
}

export class LoadSender {
  readonly #host: string;
  readonly #port: number;
  readonly #lossMs: number;
  readonly sockets: dgram.Socket[] = [];
  /** Per socket: name index -> send time (ms) of the request in flight. */
  readonly inFlight: Map<number, number>[] = [];
  answered = 0;
  errors = 0;
  lost = 0;
  onReply: (socket: number, name: number, sentAt: number, now: number) => void = () => {};
  onLost: (socket: number, name: number) => void = () => {};
  onError: (reply: Buffer) => void = () => {};

  constructor(host: string, port: number, lossMs: number) {
    this.#host = host;
    this.#port = port;
    this.#lossMs = lossMs;
  }

  async open(count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024, sendBufferSize: 4 * 1024 * 1024 });
      const map = new Map<number, number>();
      socket.on('error', () => {});
      socket.on('message', (msg) => {
        const now = performance.now();
        if (msg[0] === 0x45 /* E */) {
          this.errors++;
          this.onError(msg);
          return;
        }
        const name = nameIndexOf(msg);
        const sentAt = map.get(name);
        if (sentAt === undefined) return; // a late reply to a request already counted as lost
        map.delete(name);
        this.answered++;
        this.onReply(i, name, sentAt, now);
      });
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
      this.sockets.push(socket);
      this.inFlight.push(map);
    }
  }

  /** Sends `pdu` about name `name` on socket `s`; false if that name is already in flight there. */
  send(s: number, name: number, pdu: Buffer): boolean {
    const map = this.inFlight[s];
    if (map.has(name)) return false;
    map.set(name, performance.now());
    this.sockets[s].send(pdu, this.#port, this.#host);
    return true;
  }

  /** Counts requests without a reply after lossMs as lost and hands them to onLost. */
  sweep(): void {
    const limit = performance.now() - this.#lossMs;
    this.inFlight.forEach((map, s) => {
      for (const [name, sentAt] of map) {
        if (sentAt > limit) continue;
        map.delete(name);
        this.lost++;
        this.onLost(s, name);
      }
    });
  }

  close(): void {
    for (const s of this.sockets) s.close();
  }
}
