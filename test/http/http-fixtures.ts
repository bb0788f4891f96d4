/**
 * Fixtures for the HTTP tests: an in-process index, peers on 127.0.0.1 port 0 (files shared
 * at once, no rescans), a peer's HTTP server, and small readers of its answers.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PeerHttpServer, type PeerHttpOptions } from '../../src/http/peer-http.js';
import type { IndexClient } from '../../src/peer/index-client.js';
import { Peer, type PeerOptions } from '../../src/peer/peer.js';
import type { Fixtures } from '../helpers/peer-fixtures.js';

export interface Swarm {
  index: IndexClient;
  /** A peer sharing a folder holding `files`. */
  peer(files?: Record<string, string | Buffer>, extra?: Partial<PeerOptions>): Promise<Peer>;
  http(peer: Peer, extra?: Partial<PeerHttpOptions>): Promise<{ server: PeerHttpServer; base: string }>;
  holdersOf(name: string): Promise<number[]>;
}

export async function swarm(fx: Fixtures): Promise<Swarm> {
  const index = fx.indexClient((await fx.index()).port);
  return {
    index,
    async peer(files = {}, extra = {}) {
      const dir = await fx.tempDir();
      for (const [name, body] of Object.entries(files)) await writeFile(join(dir, name), body);
      // Rescans an hour apart: anything registered during a test was registered by the peer itself.
      const peer = await Peer.listen({ dir, index, port: 0, host: '127.0.0.1', rescanMs: 3_600_000, settleMs: 0, ...extra });
      fx.track(() => peer.close());
      await peer.start();
      return peer;
    },
    async http(peer, extra = {}) {
      const server = await PeerHttpServer.listen({ peer, port: 0, ...extra });
      fx.track(() => server.close());
      return { server, base: `http://127.0.0.1:${server.address().port}` };
    },
    holdersOf: async (name) => (await index.list()).filter((s) => s.names.includes(name)).map((s) => s.port),
  };
}

/** The value of an unlabelled metric in Prometheus text, or undefined when absent. */
export function metric(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

export const scrape = async (base: string): Promise<string> => (await fetch(`${base}/metrics`)).text();

export const postJson = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

export interface Status {
  shared: { name: string; size: number; sha256: string }[];
  downloads: { active: { id: number; name: string; state: string; received: number }[]; recent: { id: number; name: string; state: string; error?: string }[] };
  uploads: unknown[];
  totals: { bytesSent: number; bytesReceived: number };
  peer: { port: number; authRequired: boolean };
}

export const status = async (base: string): Promise<Status> => (await (await fetch(`${base}/api/status`)).json()) as Status;
