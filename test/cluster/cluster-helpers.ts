/**
 * Index servers sharing one real Redis, in this process, and a UDP client to talk to them.
 * Every index and client opened here is closed by `closeAll()`.
 */
import { randomUUID } from 'node:crypto';
import { IndexServer } from '../../src/index/udp-server.js';
import { ReplicatedStore } from '../../src/index/replicated-store.js';
import { UdpClient, pduText, rawPdu } from '../helpers/udp.js';
import type { RedisServer } from './redis-server.js';

export interface ClusterIndex {
  server: IndexServer;
  store: ReplicatedStore;
  port: number;
  statuses: string[];
  close(): Promise<void>;
}

const closers: (() => Promise<unknown>)[] = [];

export const newPrefix = () => `t-${randomUUID().slice(0, 8)}:`;

/** An index on 127.0.0.1 (port 0) whose store is loaded from `redis` before it listens. */
export async function startIndex(redis: RedisServer, prefix: string, ttlSeconds = 90): Promise<ClusterIndex> {
  const statuses: string[] = [];
  const store = await ReplicatedStore.open({ url: redis.url, prefix, ttlMs: ttlSeconds * 1000, onStatus: (s) => statuses.push(s.message) });
  const server = await IndexServer.listen({ store, host: '127.0.0.1', port: 0 });
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= server.close().then(() => store.close()));
  closers.push(close);
  return { server, store, port: server.address().port, statuses, close };
}

export async function client(host = '127.0.0.1'): Promise<UdpClient> {
  const c = await UdpClient.open(host);
  closers.push(async () => c.close());
  return c;
}

/** Sends one PDU and returns the reply's type and data ('' type when none came). */
export async function ask(c: UdpClient, port: number, type: string, data: string, timeoutMs = 1000): Promise<string> {
  await c.send(rawPdu(type, data), port);
  const reply = await c.next(timeoutMs);
  if (!reply) return 'timeout';
  const { type: t, data: d } = pduText(reply);
  return `${t} ${d}`;
}

/** Polls `probe` until it returns true (or `timeoutMs` passes); returns whether it did. */
export async function eventually(probe: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export async function closeAll(): Promise<void> {
  await Promise.all(closers.splice(0).map((close) => close()));
}
