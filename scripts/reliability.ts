/**
 * `npm run reliability`: the figures behind docs/reliability.md, measured on loopback.
 *
 *   1. index requests (S and the whole O sequence) through the fault proxy at rising loss
 *   2. random datagrams thrown at the index, garbage connections at a content server, and a
 *      check that both still answer correctly afterwards
 *   3. connections a content server holds at its cap, and what the next one gets
 *   4. the index under abuse: an O storm against 2,000,000 registrations while S is timed,
 *      what an address without a registration gets per O, and the paced rate to one address
 *      (`npm run reliability -- abuse` runs only this part)
 *
 * Bounded: every loop has a fixed count, and everything started here is closed at the end.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Registry } from '../src/index/registry.js';
import { IndexServer } from '../src/index/udp-server.js';
import { ContentConnection } from '../src/peer/content-client.js';
import { ContentServer } from '../src/peer/content-server.js';
import { FileLibrary } from '../src/peer/file-library.js';
import { IndexClient } from '../src/peer/index-client.js';
import { percentile } from './bench/measure.js';
import { UdpFaultProxy } from './lib/fault-proxy.js';

const say = (line: string) => process.stdout.write(`${line}\n`);
/** The p-th percentile (0..100) of unsorted values. */
const pct = (xs: number[], p: number) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    p,
  );

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
    say(
      `| ${loss * 100}% | ${share(searches)} | ${pct(okMs(searches), 50).toFixed(1)} | ${pct(okMs(searches), 99).toFixed(1)} | ${share(lists)} | ${pct(okMs(lists), 50).toFixed(1)} |`,
    );
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
  say(
    `\n## Fuzzing\n- index: ${count} random datagrams sent; received ${s.received - before.received}, dropped without reply ${s.dropped - before.dropped}, refused with E ${s.refused - before.refused}; still answers S correctly: ${still ? 'yes' : 'NO'}`,
  );
}

async function garbageConnections(content: ContentServer): Promise<void> {
  const count = 1000;
  for (let batch = 0; batch < count / 100; batch++) {
    await Promise.all(
      Array.from(
        { length: 100 },
        (_, i) =>
          new Promise<void>((resolve) => {
            const s = net.connect(content.address().port, '127.0.0.1', () => {
              s.write(randomBytes(1 + (((batch * 100 + i) * 131) % 5000)));
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
    held.push(
      await new Promise<net.Socket>((resolve) => {
        const s = net.connect(content.address().port, '127.0.0.1', () => resolve(s));
        s.on('error', () => {});
      }),
    );
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
  say(
    `\n## Connection cap\n- content server held ${content.connections} idle connections (cap ${cap}); connection ${cap + 1} got "${extra.subarray(1, extra.indexOf(0, 1)).toString()}" (type ${String.fromCharCode(extra[0])}) and was closed; process RSS ${(rss / 1048576).toFixed(0)} MiB`,
  );
  for (const s of held) s.destroy();
  await content.close();
}

const O_PDU = Buffer.alloc(100, 0).fill('O', 0, 1);
const pduOf = (type: string, data: string) => {
  const b = Buffer.alloc(100);
  b.write(type + data, 'utf8');
  return b;
};

async function bound(host: string): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, host, () => r()));
  return s;
}

/** Sends `pdu` from `socket` and waits for one reply; its time in ms, or undefined after 1 s. */
function ask(socket: dgram.Socket, pdu: Buffer, port: number): Promise<number | undefined> {
  const t = performance.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.removeAllListeners('message');
      resolve(undefined);
    }, 1000);
    socket.once('message', () => {
      clearTimeout(timer);
      resolve(performance.now() - t);
    });
    socket.send(pdu, port, '127.0.0.1');
  });
}

async function abuse(): Promise<void> {
  const sources = Array.from({ length: 200 }, (_, i) => `127.0.${1 + (i >> 8)}.${i & 255}`);
  const registry = new Registry({ ttlMs: 3_600_000, maxPerSource: Infinity, maxPerPrefix: Infinity, maxRegistrations: Infinity });
  const now = Date.now();
  for (const from of sources) for (let i = 0; i < 10_000; i++) registry.register({ port: 9100, addr: from, filename: `file-${i}.bin` }, from, now);
  registry.register({ port: 9100, addr: '127.0.0.5', filename: 'probe.txt' }, '127.0.0.5', now);
  let index = await IndexServer.listen({ port: 0, host: '127.0.0.1', store: registry });
  let port = index.address().port;
  const rssBefore = process.memoryUsage().rss;
  say(`\n## Index under abuse (defaults; ${registry.size.toLocaleString('en')} registrations: 200 servers x 10,000 names, put in the store directly)`);

  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  let storming = true;
  let os = 0;
  const storm = (async () => {
    while (storming) {
      for (const from of sources.slice(0, 40)) {
        const s = await bound(from);
        await new Promise<void>((r) => s.send(O_PDU, port, '127.0.0.1', () => r()));
        s.close(); // the answers go nowhere, as to a spoofed victim
        os++;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const probes = await Promise.all(['127.0.0.200', '127.0.0.201', '127.0.0.202', '127.0.0.203'].map(bound));
  const rtts: number[] = [];
  let lost = 0;
  const before = index.stats.replies;
  const end = Date.now() + 5000;
  await Promise.all(
    probes.map(async (p) => {
      while (Date.now() < end) {
        const ms = await ask(p, pduOf('S', 'probe.txt'), port);
        if (ms === undefined) lost++;
        else rtts.push(ms);
      }
    }),
  );
  storming = false;
  await storm;
  loop.disable();
  const pdus = index.stats.replies - before - rtts.length;
  say(
    `- O storm, 5 s: ${os} O from 40 addresses holding registrations (8 a second each; ${index.listings} listings at once, the cap), ${pdus.toLocaleString('en')} listing PDUs sent (${Math.round(pdus / 5).toLocaleString('en')}/s); S from 4 other sockets: ${rtts.length} answered, ${lost} not, p50 ${pct(rtts, 50).toFixed(1)} ms, p99 ${pct(rtts, 99).toFixed(1)} ms, max ${Math.max(...rtts).toFixed(1)} ms; event loop delay p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, max ${(loop.max / 1e6).toFixed(1)} ms; RSS +${((process.memoryUsage().rss - rssBefore) / 1048576).toFixed(0)} MiB`,
  );
  for (const p of probes) p.close();
  // A fresh index on the same registry: the storm's listings (70 s each) do not run on.
  await index.close();
  index = await IndexServer.listen({ port: 0, host: '127.0.0.1', store: registry });
  port = index.address().port;

  const victims = await Promise.all(Array.from({ length: 10 }, (_, i) => bound(`127.0.0.${50 + i}`)));
  const got = victims.map(() => 0);
  victims.forEach((v, i) => v.on('message', () => got[i]++));
  for (const v of victims) {
    for (let i = 0; i < 30; i++) v.send(O_PDU, port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 500));
  const total = got.reduce((a, b) => a + b, 0);
  say(
    `- addresses without a registration: 10 x 30 O (100 B each) got ${total} PDUs in all (${Math.max(...got)} at most for one address), each an E 6 with a cookie: ${(total / 300).toFixed(2)} PDUs per O`,
  );
  for (const v of victims) v.close();

  const proven = await bound(sources[0]);
  let bytes = 0;
  proven.on('message', (m: Buffer) => (bytes += m.length));
  const t0 = performance.now();
  proven.send(O_PDU, port, '127.0.0.1');
  await new Promise((r) => setTimeout(r, 3000));
  const secs = (performance.now() - t0) / 1000;
  proven.close();
  say(
    `- one address holding a registration (a v1 client, or a victim of a spoofed R) asking for the 2,000,000-name listing: ${bytes.toLocaleString('en')} bytes in ${secs.toFixed(1)} s = ${Math.round(bytes / secs).toLocaleString('en')} B/s (limit 1,000,000 B/s, burst 6,400 B)`,
  );
  await index.close();
}

async function main(): Promise<void> {
  if (process.argv.includes('abuse')) {
    await abuse();
    return;
  }
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
    await abuse();
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
