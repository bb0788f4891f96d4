/**
 * `npm run reliability`: the figures behind docs/reliability.md, measured on loopback.
 *
 *   1. index requests (S and the whole O sequence) through the fault proxy at rising loss
 *   2. random datagrams thrown at the index, garbage connections at a content server, and a
 *      check that both still answer correctly afterwards
 *   3. connections a content server holds at its cap, and what the next one gets
 *
 * Bounded: every loop has a fixed count, and everything started here is closed at the end.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IndexServer } from '../src/index/udp-server.js';
import { ContentConnection } from '../src/peer/content-client.js';
import { ContentServer } from '../src/peer/content-server.js';
import { FileLibrary } from '../src/peer/file-library.js';
import { IndexClient } from '../src/peer/index-client.js';
import { percentile } from './bench/measure.js';
import { UdpFaultProxy } from './lib/fault-proxy.js';

const say = (line: string) => process.stdout.write(`${line}\n`);
/** The p-th percentile (0..100) of unsorted values. */
const pct = (xs: number[], p: number) => percentile([...xs].sort((a, b) => a - b), p);

async function timed<T>(fn: () => Promise<T>): Promise<{ ok: boolean; ms: number }> {
  const t0 = performance.now();
  const ok = await fn().then(
    () => true,
    () => false,
  );
  return { ok, ms: performance.now() - t0 };
}

async function lossSweep(index: IndexServer): Promise<void> {
  say('\n## Index requests under datagram loss (each way), default client settings (8 tries, 300 ms growing 1.6x up to 1.5 s)');
  say('| loss each way | S ok | S p50 ms | S p99 ms | O (5 servers, 60 names) ok | O p50 ms |');
  say('|---|---|---|---|---|---|');
  for (const loss of [0, 0.1, 0.2, 0.3, 0.4, 0.5]) {
    const proxy = await UdpFaultProxy.start({
      target: { host: '127.0.0.1', port: index.address().port },
      toServer: { drop: loss, duplicate: 0.02, reorder: 0.02 },
      toClient: { drop: loss, duplicate: 0.02, reorder: 0.02 },
      seed: Math.round(loss * 100) + 7,
    });
    const client = new IndexClient({ host: '127.0.0.1', port: proxy.port });
    const searches = await Promise.all(Array.from({ length: 200 }, (_, i) => timed(() => client.search(`name-${i % 60}`))));
    const lists: { ok: boolean; ms: number }[] = [];
    for (let i = 0; i < 4; i++) lists.push(...(await Promise.all(Array.from({ length: 10 }, () => timed(() => client.list())))));
    await proxy.close();
    const okMs = (rs: typeof searches) => rs.filter((r) => r.ok).map((r) => r.ms);
    const share = (rs: typeof searches) => `${rs.filter((r) => r.ok).length}/${rs.length}`;
    say(`| ${loss * 100}% | ${share(searches)} | ${pct(okMs(searches), 50).toFixed(1)} | ${pct(okMs(searches), 99).toFixed(1)} | ${share(lists)} | ${pct(okMs(lists), 50).toFixed(1)} |`);
  }
}

async function fuzzIndex(index: IndexServer): Promise<void> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const count = 100_000;
  const before = { ...index.stats };
  for (let i = 0; i < count; i++) {
    // Mostly full-size datagrams (they reach the decoder), some of other sizes, some with a valid type letter.
    const size = i % 10 === 0 ? i % 300 : 100;
    const d = randomBytes(size);
    if (size > 0 && i % 3 === 0) d[0] = 'RSTOAE'.charCodeAt(i % 6);
    socket.send(d, index.address().port, '127.0.0.1');
    // Paced so the kernel's receive buffer does not overflow: every datagram should be decoded.
    if (i % 100 === 99) await new Promise((r) => setTimeout(r, 2));
  }
  await new Promise((r) => setTimeout(r, 500));
  socket.close();
  const client = new IndexClient({ host: '127.0.0.1', port: index.address().port });
  const still = await client.search('name-1').then((h) => h.filename === 'name-1');
  const s = index.stats;
  say(`\n## Fuzzing\n- index: ${count} random datagrams sent; received ${s.received - before.received}, dropped without reply ${s.dropped - before.dropped}, refused with E ${s.refused - before.refused}; still answers S correctly: ${still ? 'yes' : 'NO'}`);
}

async function garbageConnections(content: ContentServer): Promise<void> {
  const count = 1000;
  for (let batch = 0; batch < count / 100; batch++) {
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        new Promise<void>((resolve) => {
          const s = net.connect(content.address().port, '127.0.0.1', () => {
            s.write(randomBytes(1 + ((batch * 100 + i) * 131) % 5000));
            if (i % 2) s.destroy();
            else s.end();
          });
          s.on('error', () => {});
          s.on('close', () => resolve());
          s.resume();
        }),
      ),
    );
  }
  const conn = await ContentConnection.open('127.0.0.1', content.address().port);
  const header = await conn.request('sample.bin');
  conn.close();
  say(`- content server: ${count} connections of random bytes (1..5000 each, half reset); still serves: ${header.size === 65536 ? 'yes' : 'NO'}`);
}

async function connectionCap(dir: string): Promise<void> {
  const cap = 256;
  const content = await ContentServer.listen({ library: new FileLibrary(dir), port: 0, host: '127.0.0.1', maxConnections: cap });
  const held: net.Socket[] = [];
  for (let i = 0; i < cap; i++) {
    held.push(await new Promise<net.Socket>((resolve) => {
      const s = net.connect(content.address().port, '127.0.0.1', () => resolve(s));
      s.on('error', () => {});
    }));
  }
  await new Promise((r) => setTimeout(r, 100));
  const extra = await new Promise<Buffer>((resolve) => {
    const s = net.connect(content.address().port, '127.0.0.1');
    let got = Buffer.alloc(0);
    s.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
    s.on('close', () => resolve(got));
    s.on('error', () => {});
  });
  const rss = process.memoryUsage().rss;
  say(`\n## Connection cap\n- content server held ${content.connections} idle connections (cap ${cap}); connection ${cap + 1} got "${extra.subarray(1, extra.indexOf(0, 1)).toString()}" (type ${String.fromCharCode(extra[0]!)}) and was closed; process RSS ${(rss / 1048576).toFixed(0)} MiB`);
  for (const s of held) s.destroy();
  await content.close();
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'peerdex-reliability-'));
  await writeFile(join(dir, 'sample.bin'), randomBytes(65536));
  // A long TTL: the sweep runs for minutes and must not see its registrations expire.
  const index = await IndexServer.listen({ port: 0, host: '127.0.0.1', ttlSeconds: 3600 });
  const content = await ContentServer.listen({ library: new FileLibrary(dir), port: 0, host: '127.0.0.1' });
  try {
    for (let s = 0; s < 5; s++) {
      for (let n = 0; n < 12; n++) index.registry.register({ port: 9100 + s, addr: '127.0.0.1', filename: `name-${s * 12 + n}` }, '127.0.0.1', Date.now());
    }
    say(`# peerdex reliability figures (${new Date().toISOString()}, node ${process.version})`);
    await lossSweep(index);
    await fuzzIndex(index);
    await garbageConnections(content);
    await connectionCap(dir);
  } finally {
    await content.close();
    await index.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`reliability: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
