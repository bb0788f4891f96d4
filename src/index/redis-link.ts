/**
 * Carries a store's changes through Redis to the other indexes of the same prefix, and back
 * (the keys, the script and the stream entries are in redis-changes.ts).
 *
 * Local changes go to an outbox (redis-outbox.ts) and are sent in order, one script call per
 * batch of up to 512 changes: the batch is what came in since the last call went out, so a
 * burst costs one round trip per 512 changes and a lone change is sent at the next turn of
 * the event loop. The client is acknowledged before any of that: nothing waits for Redis.
 * While Redis is away the outbox keeps the changes (bounded, see Outbox), and when Redis comes
 * back they are sent; after an overflow, or when Redis restarted (a new run_id), every live
 * registration is written back too, and a restarted Redis's stream is read from its start.
 * A follower that finds a hole in the stream's sequence (entries it had not read were trimmed)
 * reloads everything from the hash (redis-snapshot.ts).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { PeerdexError } from '../protocol/errors.js';
import { redisLabel } from './redis-url.js';
import { CHANGES_SCRIPT, STREAM_KEEP, changeLine, fieldOfLine, keysOf, parseStreamEntry, streamId, writeBackLine, type ChangesRedis, type Keys } from './redis-changes.js';
import { Outbox } from './redis-outbox.js';
import { loadSnapshot, reconcile, takeSnapshot } from './redis-snapshot.js';
import type { RegistryStore, StoreEntry } from './store.js';

export interface RedisLinkOptions {
  /** redis://HOST:PORT[/DB] */
  url: string;
  prefix: string;
  store: RegistryStore;
  /** One line when Redis goes away, one when it is back, one when this index reloads. */
  onStatus?: (status: { up: boolean; message: string }) => void;
  now?: () => number;
  /** How long start() waits for the first connection (ms). Default 5000. */
  connectTimeoutMs?: number;
}

const OUTBOX_LIMIT = 200_000; // changes kept through an outage before a full write-back
const BATCH = 512;
const READ_COUNT = 16; // entries of up to 512 changes: about 1 MB a reply at most
const READ_BLOCK_MS = 1000;

export class RedisLink {
  readonly #id = randomUUID();
  readonly #options: RedisLinkOptions;
  /** The URL as logs may show it: without a password. */
  readonly #label: string;
  readonly #keys: Keys;
  readonly #redis: Redis & ChangesRedis;
  readonly #reader: Redis;
  readonly #now: () => number;
  readonly #outbox = new Outbox(OUTBOX_LIMIT);
  /** The batch being sent (kept, and sent again first, when the call fails). */
  #current: string[] | undefined;
  /** Every live registration, written back after the first `#beforeWriteBack` queued lines. */
  #writeBack: Iterator<StoreEntry> | undefined;
  #beforeWriteBack = 0;
  /** Told (true) once what was queued at a reconnect and the write-back are sent; false if Redis went again. */
  #caughtUp: ((ok: boolean) => void) | undefined;
  #pumping: Promise<boolean> | undefined;
  #scheduled = false;
  #paused = false;
  #up = false;
  #everUp = false;
  #runId = '';
  #lastSeq = 0; // sequence number of the last change read from the stream (0: none)
  #generation = 0; // bumped when the stream is to be read again from the start
  #closed = false;
  #lastError = '';
  #following: Promise<void> | undefined;
  #unsubscribe: () => void = () => {};

  constructor(options: RedisLinkOptions) {
    this.#options = options;
    this.#label = redisLabel(options.url);
    this.#now = options.now ?? Date.now;
    this.#keys = keysOf(options.prefix);
    const common = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (times: number) => Math.min(times * 50, 500),
    };
    this.#redis = new Redis(options.url, common) as Redis & ChangesRedis;
    this.#redis.defineCommand('peerdexChanges', { numberOfKeys: 3, lua: CHANGES_SCRIPT });
    this.#reader = new Redis(options.url, common);
    this.#reader.on('error', () => {}); // reported through the main connection
    this.#redis.on('error', (err: Error) => {
      this.#lastError = err.message;
      this.#down(err.message);
    });
    this.#redis.on('close', () => this.#down('connection closed'));
    this.#redis.on('ready', () => void this.#onReady());
  }

  /** Connects, loads every live registration into the store, then follows the changes. */
  async start(): Promise<void> {
    const timeout = this.#options.connectTimeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    const giveUp = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeout} ms`)), timeout);
    });
    try {
      await Promise.race([Promise.all([this.#redis.connect(), this.#reader.connect()]), giveUp]);
      this.#runId = await this.#serverRunId();
      const snapshot = await takeSnapshot(this.#redis, this.#keys);
      loadSnapshot(this.#options.store, snapshot, this.#now());
      this.#lastSeq = snapshot.seq;
    } catch (err) {
      await this.close();
      const reason = this.#lastError || (err instanceof Error ? err.message : String(err));
      // Only a Redis that is not there gets the hint; a refused password or database does not.
      const hint = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|no answer|closed/i.test(reason) ? ' (is redis-server running?)' : '';
      throw new PeerdexError('ERR_CONNECTION', `cannot use redis ${this.#label}: ${reason}${hint}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    this.#up = this.#everUp = true;
    this.#unsubscribe = this.#options.store.onChange((c) => {
      if (c.origin !== 'local') return;
      this.#outbox.push(changeLine(c), this.#up);
      this.#schedule();
    });
    this.#following = this.#follow();
  }

  /** Sends what is still queued (if Redis is up), then disconnects. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    await this.#drain().catch(() => {});
    this.#reader.disconnect();
    this.#redis.disconnect();
    await this.#following;
  }

  /** Changes not yet in Redis (a due write-back counts one), for tests and stats. */
  get pending(): number {
    const writeBack = this.#writeBack !== undefined || this.#outbox.overflowed ? 1 : 0;
    return this.#outbox.size + (this.#current?.length ?? 0) + writeBack;
  }

  // ---- following --------------------------------------------------------------------------

  async #follow(): Promise<void> {
    while (!this.#closed) {
      const generation = this.#generation;
      let reply: [string, [string, string[]][]][] | null;
      try {
        reply = await this.#reader.xread('COUNT', READ_COUNT, 'BLOCK', READ_BLOCK_MS, 'STREAMS', this.#keys[1], streamId(this.#lastSeq));
      } catch {
        if (!this.#closed) await sleep(50);
        continue;
      }
      if (generation !== this.#generation) continue; // Redis restarted meanwhile: read anew
      for (const [id, fields] of reply?.[0]?.[1] ?? []) {
        const entry = parseStreamEntry(id, fields);
        if (entry.first !== this.#lastSeq + 1) {
          await this.#reload(entry.first);
          break; // the rest of this reply is in the snapshot
        }
        this.#lastSeq = entry.last;
        if (entry.index === this.#id) continue; // our own changes, applied before they were sent
        for (const change of entry.changes()) this.#options.store.apply(change);
      }
    }
  }

  /** Entries this index had not read were trimmed: reload from the hash (one line logged). */
  async #reload(foundFirst: number): Promise<void> {
    const generation = this.#generation;
    this.#paused = true; // no batch in flight while the snapshot is taken and compared
    try {
      while (this.#pumping) await this.#pumping;
      // A restarted Redis is #onReady's to handle (write-back, read from the start).
      if ((await this.#serverRunId()) !== this.#runId) throw new Error('redis restarted');
      const snapshot = await takeSnapshot(this.#redis, this.#keys);
      if (generation !== this.#generation) return;
      // Registrations whose latest change is not in Redis yet are this index's to keep.
      const unsent = this.#outbox.fields();
      for (const line of this.#current ?? []) unsent.add(fieldOfLine(line));
      const writeBackDue = this.#writeBack !== undefined || this.#outbox.overflowed;
      const counts = reconcile(this.#options.store, snapshot, this.#now(), writeBackDue ? undefined : unsent);
      const missed = foundFirst - this.#lastSeq - 1;
      this.#lastSeq = snapshot.seq;
      this.#options.onStatus?.({
        up: this.#up,
        message: `redis ${this.#label}: this index fell behind the change stream (${missed} change(s) trimmed unread): reloaded ${counts.loaded} registration(s), dropped ${counts.dropped}`,
      });
    } catch {
      await sleep(50); // the next read finds the hole again
    } finally {
      this.#paused = false;
      this.#schedule();
    }
  }

  // ---- sending --------------------------------------------------------------------------

  /** Starts sending at the next turn of the event loop (so that one turn is one batch). */
  #schedule(): void {
    if (this.#scheduled || this.#pumping || !this.#up || this.#paused) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#startPump();
    });
  }

  #startPump(): Promise<boolean> {
    if (this.#pumping) return this.#pumping;
    if (!this.#up || this.#paused) return Promise.resolve(false);
    const pumping = this.#pump().finally(() => {
      if (this.#pumping === pumping) this.#pumping = undefined;
    });
    this.#pumping = pumping;
    return pumping;
  }

  /** Sends batches while there are any; resolves false when a call failed. */
  async #pump(): Promise<boolean> {
    while (this.#up && !this.#paused) {
      const batch = this.#current ?? this.#nextBatch();
      if (!batch) return true;
      this.#current = batch;
      try {
        await this.#redis.peerdexChanges(...this.#keys, this.#id, STREAM_KEEP, batch.join('\n'));
      } catch {
        if (this.#up) setTimeout(() => this.#schedule(), 200).unref(); // e.g. Redis out of memory
        return false;
      }
      this.#current = undefined;
      if (this.#caughtUp && this.#beforeWriteBack === 0 && !this.#writeBack) this.#tellCaughtUp(true);
    }
    return true;
  }

  #tellCaughtUp(ok: boolean): void {
    const tell = this.#caughtUp;
    this.#caughtUp = undefined;
    tell?.(ok);
  }

  /** What was queued before a write-back, then the write-back, then the rest of the queue. */
  #nextBatch(): string[] | undefined {
    if (this.#beforeWriteBack > 0) {
      const lines = this.#outbox.take(Math.min(BATCH, this.#beforeWriteBack));
      this.#beforeWriteBack = lines.length === 0 ? 0 : this.#beforeWriteBack - lines.length;
      if (lines.length > 0) return lines;
    }
    if (this.#writeBack) {
      const lines: string[] = [];
      while (lines.length < BATCH) {
        const next = this.#writeBack.next();
        if (next.done) {
          this.#writeBack = undefined;
          break;
        }
        lines.push(writeBackLine(next.value));
      }
      if (lines.length > 0) return lines;
    }
    return this.#outbox.size > 0 ? this.#outbox.take(BATCH) : undefined;
  }

  /** Sends everything there is, as long as Redis is up and the calls succeed. */
  async #drain(): Promise<void> {
    while (this.#up && this.pending > 0) {
      if (this.#paused) await sleep(5);
      else if (!(await this.#startPump())) return;
    }
  }

  // ---- Redis going and coming back --------------------------------------------------------

  #down(message: string): void {
    this.#tellCaughtUp(false);
    if (!this.#up || this.#closed) return;
    this.#up = false;
    this.#options.onStatus?.({ up: false, message: `redis ${this.#label} unreachable (${message}): answering from memory` });
  }

  async #onReady(): Promise<void> {
    if (!this.#everUp || this.#closed) return; // the first connection is start()'s
    try {
      const runId = await this.#serverRunId();
      const restarted = runId !== this.#runId;
      if (restarted) {
        // A restarted Redis (empty, or with an older copy): write back, read its stream anew.
        this.#runId = runId;
        this.#generation++;
        this.#lastSeq = 0;
      }
      const queued = this.#outbox.size + (this.#current?.length ?? 0);
      // What was queued (after an overflow: removals only) goes first, then (when due) every
      // live registration as it is when its batch is sent, then what is queued from now on.
      this.#beforeWriteBack = this.#outbox.size;
      let writtenBack = '';
      if (restarted || this.#outbox.overflowed) {
        this.#outbox.overflowed = false;
        this.#writeBack = this.#options.store.entries(this.#now())[Symbol.iterator]();
        writtenBack = ' and wrote back every live registration';
      }
      const nothingToSend = queued === 0 && !this.#writeBack;
      const caughtUp = nothingToSend ? Promise.resolve(true) : new Promise<boolean>((resolve) => (this.#caughtUp = resolve));
      this.#up = true;
      this.#schedule();
      if (!(await caughtUp)) return; // gone again: the next 'ready' goes on
      const lost = this.#outbox.removalsDropped;
      this.#outbox.removalsDropped = 0;
      const dropped = lost > 0 ? ` (${lost} removal(s) made meanwhile were dropped: they expire at their TTL)` : '';
      this.#options.onStatus?.({ up: true, message: `redis ${this.#label} is back: sent ${queued} change(s) made meanwhile${writtenBack}${dropped}` });
    } catch {
      // Gone again: the next 'ready' retries.
    }
  }

  async #serverRunId(): Promise<string> {
    const info = await this.#redis.info('server');
    return /run_id:(\w+)/.exec(info)?.[1] ?? '';
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
