/**
 * Carries a store's changes through Redis to the other indexes of the same prefix, and back.
 *
 * Keys (P = the prefix, `peerdex:` by default):
 *   P:regs     hash   `addr;port;filename` -> `from;expiresAt;sha256`   live registrations
 *   P:expiry   zset   `addr;port;filename` scored by expiresAt           for clean-up and load
 *   P:changes  stream one entry per change: i (index id), k (kind), f, s (from), x, h (sha256)
 * One Lua script applies a change to the hash and the zset and appends it to the stream, so
 * Redis's state and the stream agree and every index sees one order. Expiry is not streamed:
 * every index drops a registration at the same absolute time; the script only cleans up.
 *
 * Local changes go to an outbox, sent in order in pipelined batches. While Redis is away the
 * outbox keeps them (up to a bound, then it is replaced by a full write-back), and when Redis
 * comes back it is sent; a Redis that restarted (a new run_id) gets every live registration
 * written back and is read again from its first entry.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { ChangeKind, RegistryStore, StoreChange } from './store.js';

export interface RedisLinkOptions {
  /** redis://HOST:PORT[/DB] */
  url: string;
  prefix: string;
  store: RegistryStore;
  /** Called once when Redis goes away and once when it is back. */
  onStatus?: (status: { up: boolean; message: string }) => void;
  now?: () => number;
  /** How long start() waits for the first connection (ms). Default 5000. */
  connectTimeoutMs?: number;
}

const STREAM_MAXLEN = 1_000_000; // approximate (MAXLEN ~): a follower further behind reloads
const OUTBOX_LIMIT = 200_000; // queued changes kept through an outage before a full write-back
const BATCH = 512;
const READ_BLOCK_MS = 1000;

const CHANGE_SCRIPT = `
local id, kind, field, from, expires, sha, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local cur = redis.call('ZSCORE', KEYS[2], field)
if kind == 'added' or kind == 'refreshed' then
  if cur and tonumber(cur) > tonumber(expires) then return 0 end
  redis.call('HSET', KEYS[1], field, from .. ';' .. expires .. ';' .. sha)
  redis.call('ZADD', KEYS[2], expires, field)
elseif kind == 'expired' then
  if cur and tonumber(cur) <= tonumber(expires) then
    redis.call('HDEL', KEYS[1], field)
    redis.call('ZREM', KEYS[2], field)
  end
  return 1
else
  local old = redis.call('HGET', KEYS[1], field)
  if old and string.sub(old, 1, #from + 1) == from .. ';' then
    redis.call('HDEL', KEYS[1], field)
    redis.call('ZREM', KEYS[2], field)
  end
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*', 'i', id, 'k', kind, 'f', field, 's', from, 'x', expires, 'h', sha)
return 1`;

type ChangeRedis = Redis & {
  peerdexChange(regs: string, expiry: string, log: string, ...args: (string | number)[]): Promise<number>;
};

const fieldOf = (c: Pick<StoreChange, 'holder'>) => `${c.holder.addr};${c.holder.port};${c.holder.filename}`;

function parseHolder(field: string, sha: string | undefined) {
  const [addr = '', port = '0', filename = ''] = field.split(';');
  return { addr, port: Number(port), filename, sha256: sha || undefined };
}

export class RedisLink {
  readonly #id = randomUUID();
  readonly #options: RedisLinkOptions;
  readonly #keys: [string, string, string];
  readonly #redis: ChangeRedis;
  readonly #reader: Redis;
  readonly #now: () => number;
  #outbox: StoreChange[] = [];
  #sending = false;
  #up = false;
  #everUp = false;
  #writeBackAll = false;
  #runId = '';
  #lastId = '0-0';
  #generation = 0; // bumped when the stream is to be read again from the start
  #closed = false;
  #lastError = '';
  #following: Promise<void> | undefined;
  #unsubscribe: () => void = () => {};

  constructor(options: RedisLinkOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    const p = options.prefix;
    this.#keys = [`${p}regs`, `${p}expiry`, `${p}changes`];
    const common = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (times: number) => Math.min(times * 50, 500),
    };
    this.#redis = new Redis(options.url, common) as ChangeRedis;
    this.#redis.defineCommand('peerdexChange', { numberOfKeys: 3, lua: CHANGE_SCRIPT });
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
      await this.#load();
    } catch (err) {
      await this.close();
      const reason = this.#lastError || (err instanceof Error ? err.message : String(err));
      throw new Error(`cannot use redis ${this.#options.url}: ${reason} (is redis-server running?)`);
    } finally {
      clearTimeout(timer);
    }
    this.#up = this.#everUp = true;
    this.#unsubscribe = this.#options.store.onChange((c) => {
      if (c.origin === 'local') this.#enqueue(c);
    });
    this.#following = this.#follow();
  }

  /** Sends what is still queued (if Redis is up), then disconnects. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    if (this.#up) await this.#flush().catch(() => {});
    this.#reader.disconnect();
    this.#redis.disconnect();
    await this.#following;
  }

  /** Changes waiting for Redis (for tests and stats). */
  get pending(): number {
    return this.#outbox.length;
  }

  // ---- loading and following ----------------------------------------------------------

  async #load(): Promise<void> {
    // One MULTI: the snapshot and the stream position it corresponds to, with nothing between.
    const [regs, , log] = this.#keys;
    const results = await this.#redis.multi().xrevrange(log, '+', '-', 'COUNT', 1).hgetall(regs).exec();
    const last = (results?.[0]?.[1] as [string, string[]][] | undefined)?.[0];
    const entries = (results?.[1]?.[1] ?? {}) as Record<string, string>;
    this.#lastId = last?.[0] ?? '0-0';
    const now = this.#now();
    for (const [field, value] of Object.entries(entries)) {
      const [from = '', expires = '0', sha] = value.split(';');
      const expiresAt = Number(expires);
      if (expiresAt <= now) continue;
      this.#options.store.apply({ kind: 'added', holder: parseHolder(field, sha), from, expiresAt, origin: 'replicated' });
    }
  }

  async #follow(): Promise<void> {
    while (!this.#closed) {
      const generation = this.#generation;
      let reply: [string, [string, string[]][]][] | null;
      try {
        reply = await this.#reader.xread('COUNT', 1000, 'BLOCK', READ_BLOCK_MS, 'STREAMS', this.#keys[2], this.#lastId);
      } catch {
        if (!this.#closed) await sleep(50);
        continue;
      }
      for (const [id, fields] of reply?.[0]?.[1] ?? []) {
        this.#applyRemote(fields);
        if (generation === this.#generation) this.#lastId = id;
      }
    }
  }

  #applyRemote(fields: string[]): void {
    const f: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
    if (f.i === this.#id) return; // our own change, applied before it was sent
    const change: StoreChange = {
      kind: f.k as ChangeKind,
      holder: parseHolder(f.f ?? '', f.h),
      from: f.s ?? '',
      expiresAt: Number(f.x),
      origin: 'replicated',
    };
    this.#options.store.apply(change);
  }

  // ---- sending --------------------------------------------------------------------------

  #enqueue(change: StoreChange): void {
    if (this.#outbox.length >= OUTBOX_LIMIT) {
      // Too much to replay: everything live is written back when Redis returns.
      this.#outbox = [];
      this.#writeBackAll = true;
    }
    if (!this.#writeBackAll || this.#up) this.#outbox.push(change);
    if (this.#up && !this.#sending) queueMicrotask(() => void this.#flush().catch(() => {}));
  }

  /** Sends the outbox in order, one pipelined batch at a time; stops (keeping it) on error. */
  async #flush(): Promise<void> {
    if (this.#sending) return;
    this.#sending = true;
    try {
      while (this.#outbox.length > 0 && this.#up) {
        const batch = this.#outbox.slice(0, BATCH);
        const pipeline = this.#redis.pipeline();
        for (const c of batch) {
          const args = [this.#id, c.kind, fieldOf(c), c.from, c.expiresAt, c.holder.sha256 ?? '', STREAM_MAXLEN];
          (pipeline as unknown as ChangeRedis).peerdexChange(...this.#keys, ...args);
        }
        const results = await pipeline.exec();
        if (!results || results.some(([err]) => err)) throw results?.find(([err]) => err)?.[0] ?? new Error('pipeline failed');
        this.#outbox.splice(0, batch.length);
      }
    } finally {
      this.#sending = false;
    }
  }

  // ---- Redis going and coming back --------------------------------------------------------

  #down(message: string): void {
    if (!this.#up || this.#closed) return;
    this.#up = false;
    this.#options.onStatus?.({ up: false, message: `redis ${this.#options.url} unreachable (${message}): answering from memory` });
  }

  async #onReady(): Promise<void> {
    if (!this.#everUp || this.#closed) return; // the first connection is start()'s
    try {
      const runId = await this.#serverRunId();
      if (runId !== this.#runId) {
        // A restarted Redis (empty, or with an older copy): write back, read its stream anew.
        this.#runId = runId;
        this.#writeBackAll = true;
        this.#generation++;
        this.#lastId = '0-0';
      }
      if (this.#writeBackAll) {
        this.#writeBackAll = false;
        const now = this.#now();
        for (const e of this.#options.store.entries(now)) this.#outbox.push({ ...e, kind: 'refreshed', origin: 'local' });
      }
      const queued = this.#outbox.length;
      this.#up = true;
      await this.#flush();
      this.#options.onStatus?.({ up: true, message: `redis ${this.#options.url} is back: sent ${queued} change(s) made meanwhile` });
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
