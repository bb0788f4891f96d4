/**
 * ContentConnection against a real ContentServer, and against small fake servers that break
 * the protocol, on 127.0.0.1 port 0.
 */
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ContentConnection } from '../../src/peer/content-client.js';
import { binaryContent, delay, expectedHeader, Fixtures, MiB, rawPdu, sha256Text, waitFor } from '../helpers/peer-fixtures.js';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

const content = binaryContent(3 * MiB + 5, 3);
let dir: string;

beforeEach(async () => {
  dir = await fx.tempDir();
  await writeFile(join(dir, 'file.bin'), content);
});

/** A Writable that keeps what it is given, optionally slowly (to exercise backpressure). */
function collector(options: { slowMs?: number; highWaterMark?: number } = {}) {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    highWaterMark: options.highWaterMark ?? 16 * 1024,
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      if (options.slowMs) setTimeout(cb, options.slowMs);
      else cb();
    },
  });
  /** Ends the sink and returns everything written, once the sink has taken it all. */
  const finished = async () => {
    sink.end();
    await new Promise<void>((resolve, reject) => sink.once('finish', resolve).once('error', reject));
    return Buffer.concat(chunks);
  };
  return { sink, bytes: () => Buffer.concat(chunks), finished };
}

async function open(port: number, idleTimeoutMs = 3000): Promise<ContentConnection> {
  const conn = await ContentConnection.open('127.0.0.1', port, { idleTimeoutMs });
  fx.track(() => conn.close());
  return conn;
}

/** A TCP server that runs `onConnection` for each client; closed in cleanup. */
async function fakeServer(onConnection: (socket: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fx.track(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return (server.address() as net.AddressInfo).port;
}

describe('against a ContentServer', () => {
  it('requests a file and receives it into a sink', async () => {
    const { port } = await fx.contentServer(dir);
    const conn = await open(port);
    const header = await conn.request('file.bin');
    expect(header).toMatchObject({ numPackets: 4, size: content.length, sha256: sha256Text(content) });
    const { sink, bytes } = collector();
    let seen = 0;
    await conn.receive(sink, (d) => (seen += d.length));
    expect(seen).toBe(content.length);
    expect(bytes().equals(content)).toBe(true);
  });

  it('requests ranges and several files on one connection', async () => {
    await writeFile(join(dir, 'empty'), '');
    const { port } = await fx.contentServer(dir);
    const conn = await open(port);
    for (const [name, offset, length, want] of [
      ['file.bin', 10, 5, content.subarray(10, 15)],
      ['empty', 0, 0, Buffer.alloc(0)],
      ['file.bin', content.length - 2, 0, content.subarray(-2)],
      ['file.bin', content.length, 0, Buffer.alloc(0)],
    ] as const) {
      const header = await conn.request(name, offset, length);
      expect(header.size).toBe(want.length);
      const { sink, bytes } = collector();
      await conn.receive(sink);
      expect(bytes().equals(want)).toBe(true);
    }
  });

  it('keeps up with a slow sink (backpressure) and delivers every byte in order', async () => {
    const { port } = await fx.contentServer(dir);
    const conn = await open(port);
    await conn.request('file.bin');
    const { sink, finished } = collector({ slowMs: 1, highWaterMark: 64 * 1024 });
    await conn.receive(sink);
    expect((await finished()).equals(content)).toBe(true);
    // and the connection is ready for another request
    await conn.request('file.bin', 0, 1);
    const next = collector();
    await conn.receive(next.sink);
    expect(next.bytes()).toEqual(content.subarray(0, 1));
  });

  it('does not take in the answer before receive() is called', async () => {
    const big = binaryContent(32 * MiB, 5);
    await writeFile(join(dir, 'big.bin'), big);
    const { port, events } = await fx.contentServer(dir);
    const conn = await open(port);
    await conn.request('big.bin');
    // The caller is busy (say, hashing a resumed part file) before it calls receive(): the
    // holder must be held back by TCP, not have its whole answer buffered in our memory.
    await delay(400);
    expect(events.filter((e) => e.type === 'served')).toEqual([]);
    const { sink, bytes } = collector();
    await conn.receive(sink);
    expect(bytes().equals(big)).toBe(true);
    await waitFor(() => events.some((e) => e.type === 'served'), 2000, 'the served event');
  });

  it('turns E 3 into ERR_NOT_FOUND and E 4 into ERR_REMOTE, and the connection stays usable', async () => {
    const { port } = await fx.contentServer(dir);
    const conn = await open(port);
    await expect(conn.request('missing')).rejects.toMatchObject({ code: 'ERR_NOT_FOUND', remoteCode: 3 });
    await expect(conn.request('file.bin', content.length + 1, 0)).rejects.toMatchObject({ code: 'ERR_REMOTE', remoteCode: 4 });
    const header = await conn.request('file.bin', 0, 3);
    expect(header.size).toBe(3);
  });

  it('fails with ERR_CONNECTION when the holder goes away mid-transfer', async () => {
    const big = binaryContent(32 * MiB, 6);
    await writeFile(join(dir, 'big.bin'), big);
    const { port, server } = await fx.contentServer(dir);
    const conn = await open(port);
    await conn.request('big.bin');
    const { sink } = collector();
    const receiving = conn.receive(sink, () => void server.close());
    await expect(receiving).rejects.toMatchObject({ code: 'ERR_CONNECTION' });
  });
});

describe('against broken holders', () => {
  it('reports a refused connection as ERR_CONNECTION', async () => {
    const port = await fakeServer(() => {});
    const probe = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    expect(port).not.toBe(probe);
    await expect(ContentConnection.open('127.0.0.1', probe)).rejects.toMatchObject({ code: 'ERR_CONNECTION', message: expect.stringContaining('refused the connection') });
  });

  it('gives up on a holder that sends nothing', async () => {
    const port = await fakeServer(() => {});
    const conn = await open(port, 150);
    await expect(conn.request('file.bin')).rejects.toMatchObject({ code: 'ERR_CONNECTION', message: expect.stringContaining('sent nothing') });
  });

  const sha = sha256Text(Buffer.from('abc'));
  const frame = (id: number, payload: Buffer) => {
    const head = Buffer.alloc(9);
    head[0] = 0x43;
    head.writeUInt32BE(id, 1);
    head.writeUInt32BE(payload.length, 5);
    return Buffer.concat([head, payload]);
  };
  it.each([
    ['a frame with the wrong packet id', Buffer.concat([expectedHeader(1, 3, sha), frame(1, Buffer.from('abc'))])],
    ['a frame that does not start with C', Buffer.concat([expectedHeader(1, 3, sha), Buffer.from('X'), frame(0, Buffer.from('abc')).subarray(1)])],
    ['more bytes than the header said', Buffer.concat([expectedHeader(1, 3, sha), frame(0, Buffer.from('abcd'))])],
    ['a zero-length frame', Buffer.concat([expectedHeader(1, 3, sha), frame(0, Buffer.alloc(0))])],
    ['an answer that is neither C nor E', rawPdu('A', 'file.bin')],
    ['a C header with a bad digest', rawPdu('C', '1;3;nope')],
  ])('fails with ERR_INTEGRITY on %s', async (_label, reply) => {
    const port = await fakeServer((socket) => socket.once('data', () => socket.write(reply)));
    const conn = await open(port, 2000);
    const outcome = conn.request('file.bin').then(() => conn.receive(collector().sink));
    await expect(outcome).rejects.toMatchObject({ code: 'ERR_INTEGRITY' });
  });

  it('fails the connection when the holder sends bytes after the last frame', async () => {
    const wire = Buffer.concat([expectedHeader(1, 3, sha), frame(0, Buffer.from('abc')), Buffer.from('zz')]);
    const port = await fakeServer((socket) => socket.once('data', () => socket.write(wire)));
    const conn = await open(port, 2000);
    // The stray bytes may come with the answer or after it: either the receive or the next
    // request fails, never silently.
    const outcome = (async () => {
      await conn.request('file.bin');
      await conn.receive(collector().sink);
      await delay(50);
      await conn.request('file.bin');
    })();
    await expect(outcome).rejects.toMatchObject({ code: 'ERR_INTEGRITY' });
  });

  it('fails with ERR_CONNECTION when the holder closes before all frames came', async () => {
    const port = await fakeServer((socket) => socket.once('data', () => socket.end(Buffer.concat([expectedHeader(2, 4, sha), frame(0, Buffer.from('ab'))]))));
    const conn = await open(port, 2000);
    await conn.request('file.bin');
    await expect(conn.receive(collector().sink)).rejects.toMatchObject({ code: 'ERR_CONNECTION' });
  });

  it('accepts frames smaller than 1 MiB, header and frames split at every byte', async () => {
    const payload = Buffer.from('hello, world');
    const digest = sha256Text(payload);
    const wire = Buffer.concat([expectedHeader(3, 12, digest), frame(0, payload.subarray(0, 5)), frame(1, payload.subarray(5, 6)), frame(2, payload.subarray(6))]);
    const port = await fakeServer((socket) =>
      socket.once('data', () => {
        void (async () => {
          for (let i = 0; i < wire.length; i++) {
            socket.write(wire.subarray(i, i + 1));
            if (i % 16 === 0) await delay(1);
          }
        })();
      }),
    );
    const conn = await open(port, 2000);
    expect(await conn.request('x')).toMatchObject({ numPackets: 3, size: 12, sha256: digest });
    const { sink, bytes } = collector();
    await conn.receive(sink);
    expect(bytes().toString()).toBe('hello, world');
  });
});
