/**
 * Sends long `O` answers a slice at a time, so that no listing holds the event loop for more
 * than `sliceMs` (2 ms) and `S` keeps being answered in between, and paced by the byte bucket
 * of the address it goes to (`--max-reply-rate`).
 *
 * A listing is a job: first it counts the servers (a slice of the registry per turn), sends
 * `num_servers`, then takes one server's names at a time, packs them into packets a chunk
 * per turn (the header needs their number), and encodes each PDU just before it is sent, when
 * the bucket allows. Nothing but the current server's names is held, so memory per job is
 * small. One server's names are taken at once: at most `--max-per-source` (10,000) of them
 * unless claimed addresses are trusted. Expiry is judged
 * at the time of the request throughout, so the count and the groups agree; a server removed
 * while its listing runs makes the answer short, and the client asks again (PROTOCOL.md).
 *
 * At most one job per address (a new O from it starts its listing again) and at most
 * `maxJobs` in all: `start` returns false beyond that and the caller answers E 6.
 */
import { encodeListCount, encodeListPacket, encodeListServer, MAX_NAMES_PER_LIST_PACKET } from '../protocol/index-messages.js';
import { PDU_DATA_MAX, PDU_SIZE } from '../protocol/pdu.js';
import type { RegistryStore, ServerListing } from './store.js';
import type { TokenBuckets } from './token-buckets.js';

export interface ListStreamerOptions {
  registry: RegistryStore;
  /** Sends one PDU (the socket's send). */
  send: (pdu: Buffer, port: number, address: string) => void;
  /** Bytes per destination address; shared with the other O answers. */
  replyBudget: TokenBuckets;
  /** Most listings being sent at once. */
  maxJobs: number;
  /** Longest run of work per turn of the event loop, in ms. Default 2. */
  sliceMs?: number;
  /** Monotonic ms. Default performance.now. */
  clock?: () => number;
  /** Called when a job has sent its last PDU (or was replaced: `complete` false). */
  onEnd?: (key: string, pdus: number, complete: boolean) => void;
}

interface Job {
  key: string;
  address: string;
  port: number;
  /** Registry time of the request: what is live is judged at it. */
  listedAt: number;
  counter: Generator<void, number> | undefined;
  servers: Iterator<ServerListing> | undefined;
  groupsLeft: number;
  /** The next PDU to send when it is the count or a server's header. */
  head: Buffer | undefined;
  /** The current server, its names, and where each of its packets starts in them. */
  server: ServerListing | undefined;
  starts: number[];
  /** Names packed so far, and the bytes of the packet being filled. */
  packed: number;
  used: number;
  /** The next packet to send. */
  next: number;
  sent: number;
  wakeAt: number;
}

/** Servers looked at per step of the count, names packed per step; PDUs sent per job's turn. */
const COUNT_CHUNK = 2048;
const PACK_CHUNK = 1024;
const PDUS_PER_TURN = 32;

export class ListStreamer {
  readonly #o: Required<Omit<ListStreamerOptions, 'onEnd'>> & Pick<ListStreamerOptions, 'onEnd'>;
  readonly #jobs = new Map<string, Job>();
  #immediate: NodeJS.Immediate | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #turn = 0;

  constructor(options: ListStreamerOptions) {
    this.#o = { sliceMs: 2, clock: () => performance.now(), ...options };
  }

  /** Listings being sent now. */
  get active(): number {
    return this.#jobs.size;
  }

  /** Starts sending the listing (at registry time `now`) to `address:port`; false when at the cap. */
  start(key: string, address: string, port: number, now: number): boolean {
    if (this.#closed) return false;
    const old = this.#jobs.get(key);
    if (old) {
      this.#jobs.delete(key);
      this.#o.onEnd?.(key, old.sent, false);
    } else if (this.#jobs.size >= this.#o.maxJobs) {
      return false;
    }
    const job: Job = {
      key,
      address,
      port,
      listedAt: now,
      counter: this.#o.registry.countServers(now, COUNT_CHUNK),
      servers: undefined,
      groupsLeft: 0,
      head: undefined,
      server: undefined,
      starts: [],
      packed: 0,
      used: 0,
      next: 0,
      sent: 0,
      wakeAt: 0,
    };
    this.#jobs.set(key, job);
    this.#schedule();
    return true;
  }

  /** Stops every listing. */
  close(): void {
    this.#closed = true;
    this.#jobs.clear();
    if (this.#immediate) clearImmediate(this.#immediate);
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#closed || this.#immediate || this.#jobs.size === 0) return;
    const now = this.#o.clock();
    let wake = Infinity;
    for (const job of this.#jobs.values()) wake = Math.min(wake, job.wakeAt);
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (wake <= now) this.#immediate = setImmediate(() => this.#run());
    else this.#timer = setTimeout(() => this.#schedule(), Math.max(1, Math.ceil(wake - now)));
  }

  /**
   * One slice: turns for the ready jobs in rotation (continued from the last slice, so each
   * gets its share) until sliceMs have passed or none can go on.
   */
  #run(): void {
    this.#immediate = undefined;
    const until = this.#o.clock() + this.#o.sliceMs;
    const jobs = [...this.#jobs.values()];
    let sinceProgress = 0;
    while (sinceProgress < jobs.length && this.#o.clock() < until) {
      const job = jobs[this.#turn++ % jobs.length];
      const ready = this.#jobs.get(job.key) === job && job.wakeAt <= this.#o.clock();
      sinceProgress = ready && this.#step(job) ? 0 : sinceProgress + 1;
    }
    this.#schedule();
  }

  /** Up to PDUS_PER_TURN sends (or one step of the count) of one job; whether it can go on at once. */
  #step(job: Job): boolean {
    for (let i = 0; i < PDUS_PER_TURN; i++) {
      if (job.counter) {
        const counted = job.counter.next();
        if (!counted.done) return true; // one chunk of the count per turn
        job.counter = undefined;
        job.groupsLeft = counted.value;
        job.head = encodeListCount(counted.value);
        job.servers = this.#o.registry.servers(job.listedAt)[Symbol.iterator]();
      }
      if (job.server && job.packed < job.server.names.length) {
        this.#pack(job);
        return true; // one chunk of packing per turn
      }
      if (job.head === undefined && job.server === undefined) {
        if (!this.#nextGroup(job)) {
          this.#end(job);
          return false;
        }
        continue; // its names are packed and its header queued before anything is sent
      }
      const now = this.#o.clock();
      if (!this.#o.replyBudget.take(job.key, PDU_SIZE, now)) {
        job.wakeAt = now + this.#o.replyBudget.waitFor(job.key, PDU_SIZE, now);
        return false;
      }
      const pdu = job.head ?? this.#packet(job);
      if (job.head) job.head = undefined;
      else job.next++;
      if (job.head === undefined && job.server && job.next === job.starts.length) job.server = undefined; // let the names go
      this.#o.send(pdu, job.port, job.address);
      job.sent++;
    }
    return true;
  }

  /** Takes the next server (its packing follows); false when the listing is complete. */
  #nextGroup(job: Job): boolean {
    job.server = undefined;
    if (job.groupsLeft === 0) return false;
    const server = job.servers!.next();
    if (server.done) return false;
    job.groupsLeft--;
    Object.assign(job, { server: server.value, starts: [0], packed: 0, used: 0, next: 0 });
    return true;
  }

  /**
   * Packs up to PACK_CHUNK more names, as packListNames does (1..4 names a packet, as many as
   * fit after `packet_id;`), and queues the server's header once all are packed.
   */
  #pack(job: Job): void {
    const { names } = job.server!;
    const end = Math.min(names.length, job.packed + PACK_CHUNK);
    for (let i = job.packed; i < end; i++) {
      const bytes = Buffer.byteLength(names[i]) + 1; // the ';' before it
      const inPacket = i - job.starts[job.starts.length - 1];
      const idBytes = String(job.starts.length - 1).length;
      if (inPacket > 0 && (inPacket === MAX_NAMES_PER_LIST_PACKET || idBytes + job.used + bytes > PDU_DATA_MAX)) {
        job.starts.push(i);
        job.used = 0;
      }
      job.used += bytes;
    }
    job.packed = end;
    if (end === names.length) job.head = encodeListServer(job.server!.addr, job.server!.port, job.starts.length);
  }

  #packet(job: Job): Buffer {
    const { names } = job.server!;
    const id = job.next;
    return encodeListPacket(id, names.slice(job.starts[id], job.starts[id + 1] ?? names.length));
  }

  #end(job: Job): void {
    this.#jobs.delete(job.key);
    this.#o.onEnd?.(job.key, job.sent, true);
  }
}
