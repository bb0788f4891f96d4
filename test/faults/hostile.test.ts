/**
 * Hostile input against both servers: caps that answer E 6 instead of growing memory, no
 * amplification towards an unproven address, garbage connections, and names carrying
 * terminal escape sequences printed escaped.
 */
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IndexServer } from '../../src/index/udp-server.js';
import { encodeHolder, encodeList, encodeListCount, encodeListPacket, encodeListServer } from '../../src/protocol/index-messages.js';
import { decodePdu, PDU_SIZE } from '../../src/protocol/pdu.js';
import { encodeDownload } from '../../src/protocol/transfer-messages.js';
import { ContentServer } from '../../src/peer/content-server.js';
import { ContentConnection } from '../../src/peer/content-client.js';
import { FileLibrary } from '../../src/peer/file-library.js';
import { BIN, run } from '../../scripts/lib/processes.js';

const closers: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** Sends one datagram from `bindAddr` and collects replies until `quietMs` pass without one. */
async function exchange(port: number, pdu: Buffer, bindAddr = '127.0.0.1', quietMs = 150): Promise<Buffer[]> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, bindAddr, resolve));
  const replies: Buffer[] = [];
  return new Promise((resolve) => {
    let timer = setTimeout(done, quietMs);
    function done() {
      socket.close();
      resolve(replies);
    }
    socket.on('message', (m) => {
      replies.push(m);
      clearTimeout(timer);
      timer = setTimeout(done, quietMs);
    });
    socket.send(pdu, port, '127.0.0.1');
  });
}

const fields = (b: Buffer) => decodePdu(b);

describe('index caps and amplification', () => {
  let index: IndexServer;
  beforeEach(async () => {
    index = await IndexServer.listen({ port: 0, host: '127.0.0.1', limits: { maxPerSource: 300, maxRegistrations: 400 } });
    closers.push(() => index.close());
  });

  const register = (name: string, port = 9100, from = '127.0.0.1') => exchange(index.address().port, encodeHolder('R', { port, addr: '', filename: name }), from);

  it('answers E 6 past the per-source cap and past the total cap, and keeps serving', async () => {
    for (let i = 0; i < 300; i++) index.registry.register({ port: 9100, addr: '127.0.0.1', filename: `f${i}` }, '127.0.0.1', Date.now());
    const [over] = await register('one-more');
    expect(fields(over)).toMatchObject({ type: 'E', fields: ['6', 'too many registrations from this address'] });
    // Refreshing an existing registration is not growth and stays allowed.
    expect(fields((await register('f1'))[0]).type).toBe('A');

    for (let i = 0; i < 100; i++) index.registry.register({ port: 9100, addr: '127.0.0.2', filename: `g${i}` }, '127.0.0.2', Date.now());
    const [full] = await register('x', 9100, '127.0.0.3');
    expect(fields(full)).toMatchObject({ type: 'E', fields: ['6', 'index is full, try again later'] });
    expect(index.registry.size).toBe(400);
  });

  it('sends a long O listing only to an address holding a registration (no amplification)', async () => {
    for (let i = 0; i < 300; i++) index.registry.register({ port: 9100, addr: '127.0.0.1', filename: `name-${i}` }, '127.0.0.1', Date.now());
    const proven = await exchange(index.address().port, encodeList(), '127.0.0.1');
    expect(proven.length).toBe(2 + 75); // count, server header, 300 names / 4 per packet

    const unproven = await exchange(index.address().port, encodeList(), '127.0.0.2');
    expect(unproven).toHaveLength(1);
    expect(fields(unproven[0]).type).toBe('E');
    expect(fields(unproven[0]).fields[0]).toBe('6');
  });

  it('a short listing is sent to anyone', async () => {
    await register('only.txt');
    const replies = await exchange(index.address().port, encodeList(), '127.0.0.2');
    expect(replies.map((r) => fields(r).fields)).toEqual([['1'], ['127.0.0.1', '9100', '1'], ['0', 'only.txt']]);
  });
});

describe('content server under hostile connections', () => {
  let dir: string;
  let content: ContentServer;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'peerdex-hostile-'));
    await writeFile(join(dir, 'good.txt'), 'good content');
    content = await ContentServer.listen({ library: new FileLibrary(dir), port: 0, host: '127.0.0.1', maxConnections: 20, idleTimeoutMs: 500 });
    closers.push(() => rm(dir, { recursive: true, force: true }));
    closers.push(() => content.close());
  });

  const connect = () =>
    new Promise<net.Socket>((resolve) => {
      const s = net.connect(content.address().port, '127.0.0.1', () => resolve(s));
      s.on('error', () => {});
      closers.push(() => void s.destroy());
    });

  it('past the connection cap a new connection gets E 6 and is closed; served ones are unaffected', async () => {
    const held = await Promise.all(Array.from({ length: 20 }, connect));
    const extra = await connect();
    const answer = await new Promise<Buffer>((resolve) => {
      let got = Buffer.alloc(0);
      extra.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
      extra.on('close', () => resolve(got));
    });
    expect(answer.length).toBe(PDU_SIZE);
    expect(fields(answer).fields[0]).toBe('6');
    held[0].destroy();
    await new Promise((r) => setTimeout(r, 50));
    const conn = await ContentConnection.open('127.0.0.1', content.address().port);
    closers.push(() => conn.close());
    expect((await conn.request('good.txt')).size).toBe(12);
  });

  it('after 200 connections of random garbage it still serves correctly', async () => {
    await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const s = await connect();
        s.write(randomBytes(50 + ((i * 37) % 400)));
        if (i % 2) s.destroy();
        else s.end();
      }),
    );
    const conn = await ContentConnection.open('127.0.0.1', content.address().port);
    closers.push(() => conn.close());
    const header = await conn.request('good.txt');
    const chunks: Buffer[] = [];
    await conn.receive(new (await import('node:stream')).Writable({ write: (c, _e, cb) => (chunks.push(c), cb()) }));
    expect(header.size).toBe(12);
    expect(Buffer.concat(chunks).toString()).toBe('good content');
  });

  it('a client that pipelines D requests without reading is bounded, not buffered forever', async () => {
    const s = await connect();
    s.pause();
    const d = encodeDownload('no-such.txt');
    for (let i = 0; i < 5000; i++) s.write(d); // 5000 E answers it never reads
    // The client never reads, so it cannot see the close; the server's count shows it. Either
    // the unread answers pass the cap or the idle timeout fires: the connection does not stay.
    const until = Date.now() + 4000;
    while (content.connections > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
    expect(content.connections).toBe(0);
  });
});

describe('names with terminal escape sequences', () => {
  it('peer list prints them escaped, never raw', async () => {
    const fake = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => fake.bind(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((r) => fake.close(() => r())));
    // A malicious index: its listing carries ESC sequences that would recolour or clear a terminal.
    fake.on('message', (_m, rinfo) => {
      for (const pdu of [encodeListCount(1), encodeListServer('127.0.0.1', 9100, 1), encodeListPacket(0, ['\x1b[2Jevil', 'ok\x9b31m'])]) {
        fake.send(pdu, rinfo.port, rinfo.address);
      }
    });
    const r = await run(BIN.peer, ['list', '--index', `127.0.0.1:${fake.address().port}`, '--tries', '2', '--timeout', '200']);
    expect(r.code, r.stderr).toBe(0);
    expect([...r.stdout].filter((ch) => ch === '\x1b' || ch === '\x9b')).toEqual([]);
    expect(r.stdout).toContain('\\x1b[2Jevil');
    expect(r.stdout).toContain('ok\\x9b31m');
  });

  it('error text from a hostile peer is escaped too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'peerdex-esc-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    await mkdir(join(dir, 'x'));
    const fake = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => fake.bind(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((r) => fake.close(() => r())));
    const evil = Buffer.alloc(PDU_SIZE);
    evil.write('E4,\x1b]0;pwned\x07', 0, 'latin1');
    evil[2] = 0x3b; // "E4;" then the escape sequence as the description
    fake.on('message', (_m, rinfo) => fake.send(evil, rinfo.port, rinfo.address));
    const r = await run(BIN.peer, ['search', 'a.txt', '--index', `127.0.0.1:${fake.address().port}`, '--tries', '2', '--timeout', '200']);
    expect(r.code).toBe(1);
    expect([...r.stderr].filter((ch) => ch === '\x07' || ch === '\x1b')).toEqual([]);
    expect(r.stderr).toContain('\\x1b]0');
  });
});
