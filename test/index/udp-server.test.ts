import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { IndexServer, type IndexServerEvent, type IndexServerOptions } from '../../src/index/udp-server.js';
import { PeerdexError } from '../../src/protocol/errors.js';
import { UdpClient, pduText, rawPdu } from '../helpers/udp.js';

const SHA = createHash('sha256').update('hello').digest('base64url');

const servers: IndexServer[] = [];
const clients: UdpClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function startServer(options: IndexServerOptions = {}): Promise<{ server: IndexServer; port: number; events: IndexServerEvent[] }> {
  const server = await IndexServer.listen({ port: 0, host: '127.0.0.1', ...options });
  servers.push(server);
  const events: IndexServerEvent[] = [];
  server.on('event', (e) => events.push(e));
  server.on('error', (err) => events.push({ type: 'refused', request: 'socket', from: '', code: 0, reason: err.message }));
  return { server, port: server.address().port, events };
}

async function client(host = '127.0.0.1'): Promise<UdpClient> {
  const c = await UdpClient.open(host);
  clients.push(c);
  return c;
}

/** One request, one reply, as "T data" text. */
async function ask(c: UdpClient, port: number, type: string, data = ''): Promise<string> {
  const [reply] = await c.request(rawPdu(type, data), port);
  expect(reply.length).toBe(100);
  const { type: t, data: d } = pduText(reply);
  return `${t} ${d}`;
}

/** Sends an O and reassembles the whole sequence. */
async function list(c: UdpClient, port: number): Promise<{ addr: string; port: number; names: string[] }[]> {
  await c.send(rawPdu('O'), port);
  const [first] = await c.take(1);
  const count = Number(pduText(first).data);
  const out = [];
  for (let s = 0; s < count; s++) {
    const [header] = await c.take(1);
    const [addr, p, n] = pduText(header).data.split(';');
    const names: string[] = [];
    for (let i = 0; i < Number(n); i++) {
      const [packet] = await c.take(1);
      const [id, ...rest] = pduText(packet).data.split(';');
      expect(Number(id)).toBe(i);
      names.push(...rest);
    }
    out.push({ addr: addr, port: Number(p), names });
  }
  return out;
}

describe('IndexServer over UDP', () => {
  it('registers, searches and deregisters', async () => {
    const { port, events, server } = await startServer();
    const c = await client();
    expect(await ask(c, port, 'R', `9100;;hello.txt;${SHA}`)).toBe('A hello.txt');
    expect(await ask(c, port, 'S', 'hello.txt')).toBe(`S 9100;127.0.0.1;hello.txt;${SHA}`);
    expect(await ask(c, port, 'T', '9100;;hello.txt')).toBe('A hello.txt');
    expect(await ask(c, port, 'S', 'hello.txt')).toMatch(/^E 3;/);
    expect(events.map((e) => e.type)).toEqual(['registered', 'searched', 'deregistered', 'searched']);
    expect(server.stats).toEqual({ received: 4, dropped: 0, refused: 0, replies: 4 });
  });

  it('answers every reply with exactly 100 bytes from the server port', async () => {
    const { port } = await startServer();
    const c = await client();
    const replies: dgram.RemoteInfo[] = [];
    c.socket.on('message', (_m, rinfo) => replies.push(rinfo));
    await c.request(rawPdu('S', 'nothing'), port);
    expect(replies[0]).toMatchObject({ address: '127.0.0.1', port, size: 100 });
  });

  it('lists several servers over several packets', async () => {
    const { port } = await startServer({ trustClaimedAddresses: true });
    const c = await client();
    const plan: [string, number, string[]][] = [
      ['127.0.0.1', 9100, Array.from({ length: 10 }, (_, i) => `file-${i}.txt`)],
      ['127.0.0.5', 9100, Array.from({ length: 5 }, (_, i) => `${'long-name-'.padEnd(24, 'x')}${i}`)],
      ['127.0.0.1', 9101, ['single']],
    ];
    for (const [addr, p, names] of plan) for (const n of names) expect(await ask(c, port, 'R', `${p};${addr};${n}`)).toBe(`A ${n}`);
    const got = await list(c, port);
    expect(got).toEqual(plan.map(([addr, p, names]) => ({ addr, port: p, names })));
    expect(c.pending).toBe(0);
    // 1 count + (1 + 3) + (1 + 2) + (1 + 1) PDUs: 25-byte names go 3 to a packet.
    await c.send(rawPdu('O'), port);
    expect(await c.take(10)).toHaveLength(10);
    expect(await c.next(100)).toBeUndefined();
  });

  it('answers an empty index with a single O 0', async () => {
    const { port } = await startServer();
    const c = await client();
    expect(await ask(c, port, 'O')).toBe('O 0');
    expect(await c.next(100)).toBeUndefined();
  });

  it('refuses T and claimed-address R from another address (127.0.0.2) with E 5', async () => {
    const { port } = await startServer();
    const owner = await client('127.0.0.1');
    const other = await client('127.0.0.2');
    expect(await ask(owner, port, 'R', '9100;;a.txt')).toBe('A a.txt');
    expect(await ask(other, port, 'T', '9100;127.0.0.1;a.txt')).toMatch(/^E 5;/);
    expect(await ask(other, port, 'S', 'a.txt')).toBe('S 9100;127.0.0.1;a.txt');
    expect(await ask(other, port, 'R', '9100;127.0.0.1;b.txt')).toMatch(/^E 5;/);
    expect(await ask(other, port, 'R', '9100;;b.txt')).toBe('A b.txt');
    expect(await ask(owner, port, 'S', 'b.txt')).toBe('S 9100;127.0.0.2;b.txt');
    // E 1 from 127.0.0.2 drops only its own registration.
    await other.send(rawPdu('E', '1;bye'), port);
    expect(await ask(owner, port, 'S', 'b.txt')).toMatch(/^E 3;/);
    expect(await ask(owner, port, 'S', 'a.txt')).toBe('S 9100;127.0.0.1;a.txt');
    expect(other.pending).toBe(0);
  });

  it('drops wrong-size datagrams and unknown types silently, counting them', async () => {
    const { port, server } = await startServer();
    const c = await client();
    const junk = [
      Buffer.alloc(1),
      Buffer.alloc(99, 0x53),
      Buffer.alloc(101, 0x53),
      Buffer.alloc(1000, 0x52),
      rawPdu('X', 'a'),
      rawPdu('s', 'a'),
      rawPdu('D', 'a.txt'),
      rawPdu('\0'),
    ];
    for (const j of junk) await c.send(j, port);
    // A and E are not dropped, just never answered.
    await c.send(rawPdu('A', 'a.txt'), port);
    await c.send(rawPdu('E', '2;x'), port);
    // The server answers in order, so the first reply after the junk is the search's.
    expect(await ask(c, port, 'S', 'none')).toMatch(/^E 3;/);
    expect(c.pending).toBe(0);
    expect(server.stats.dropped).toBe(junk.length);
    expect(server.stats.received).toBe(junk.length + 3);
    expect(server.stats.replies).toBe(1);
  });

  it('answers malformed requests with E 4 and counts them as refused', async () => {
    const { port, server } = await startServer();
    const c = await client();
    expect(await ask(c, port, 'R', '9100;;../etc')).toMatch(/^E 4;/);
    expect(await ask(c, port, 'R', '0;;a')).toMatch(/^E 4;/);
    const bad = rawPdu('S');
    bad[1] = 0xff;
    await c.send(bad, port);
    expect(pduText((await c.take(1))[0]).data).toMatch(/^4;/);
    expect(server.stats.refused).toBe(3);
  });

  it('survives a flood of 5000 random datagrams and still answers correctly', async () => {
    const { port, server } = await startServer();
    const owner = await client();
    expect(await ask(owner, port, 'R', `9100;;keep.txt;${SHA}`)).toBe('A keep.txt');
    const flood = await client('127.0.0.3');
    flood.socket.on('message', () => {}); // replies to the flood are not read
    let seed = 42;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed % n;
    };
    const letters = 'RSTOAEXDC';
    let expectDropped = 0;
    const before = server.stats.received;
    for (let i = 0; i < 5000; i++) {
      const kind = rand(4);
      const size = kind === 0 ? rand(300) : 100;
      const buf = Buffer.alloc(size);
      for (let j = 0; j < size; j++) buf[j] = rand(256);
      if (kind === 2) buf[0] = letters.charCodeAt(rand(letters.length));
      if (kind === 3) {
        // Plausible text: an index letter and ';'-separated bits, sometimes a valid request.
        const parts = ['9100', '', 'keep.txt', SHA, '1', 'bye', '127.0.0.1', '127.0.0.3'].filter(() => rand(2) === 1);
        buf.fill(0);
        buf.write(letters[rand(6)] + parts.join(';'), 'utf8');
      }
      if (size !== 100 || !'RSTOAE'.includes(String.fromCharCode(buf[0]))) expectDropped++;
      await flood.send(buf, port);
      // The server shares this event loop: let it catch up now and then so the kernel's
      // receive buffer never overflows and every datagram is handled.
      if (i % 100 === 99) {
        const deadline = Date.now() + 2000;
        while (server.stats.received < before + i + 1 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      }
    }
    // Whatever the flood managed to register from 127.0.0.3 goes away with it.
    await flood.send(rawPdu('E', '1;flood over'), port);
    const probe = await client();
    expect(await ask(probe, port, 'S', 'keep.txt')).toBe(`S 9100;127.0.0.1;keep.txt;${SHA}`);
    expect(await ask(owner, port, 'S', 'keep.txt')).toBe(`S 9100;127.0.0.1;keep.txt;${SHA}`);
    expect(await ask(owner, port, 'T', '9100;;keep.txt')).toBe('A keep.txt');
    expect(server.stats.received).toBe(before + 5000 + 4);
    expect(server.stats.dropped).toBe(expectDropped);
    expect(expectDropped).toBeGreaterThan(1000);
  });

  it('expires registrations after the TTL (injected clock)', async () => {
    let clock = 1_000_000;
    const { port, server, events } = await startServer({ ttlSeconds: 90, now: () => clock });
    const c = await client();
    expect(await ask(c, port, 'R', '9100;;a')).toBe('A a');
    expect(await ask(c, port, 'R', '9100;;b')).toBe('A b');
    clock += 60_000;
    expect(await ask(c, port, 'R', '9100;;b')).toBe('A b'); // refresh b
    clock += 30_000;
    expect(await ask(c, port, 'S', 'a')).toMatch(/^E 3;/);
    expect(await ask(c, port, 'S', 'b')).toBe('S 9100;127.0.0.1;b');
    expect(await list(c, port)).toEqual([{ addr: '127.0.0.1', port: 9100, names: ['b'] }]);
    clock += 60_000;
    expect(server.sweep()).toBe(1);
    expect(events.filter((e) => e.type === 'expired')).toEqual([{ type: 'expired', holder: { port: 9100, addr: '127.0.0.1', filename: 'b', sha256: undefined } }]);
    expect(server.registry.size).toBe(0);
    expect(await ask(c, port, 'O')).toBe('O 0');
  });

  it('sweeps expired registrations on its own timer (tiny TTL)', async () => {
    const { port, server, events } = await startServer({ ttlSeconds: 0.2 });
    const c = await client();
    expect(await ask(c, port, 'R', '9100;;a')).toBe('A a');
    expect(server.registry.size).toBe(1);
    const deadline = Date.now() + 3000;
    while (server.registry.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(server.registry.size).toBe(0);
    expect(events.some((e) => e.type === 'expired')).toBe(true);
    expect(await ask(c, port, 'S', 'a')).toMatch(/^E 3;/);
  });

  it('applies limits over the wire (E 6)', async () => {
    const { port } = await startServer({ limits: { maxPerSource: 2 } });
    const c = await client();
    expect(await ask(c, port, 'R', '1;;a')).toBe('A a');
    expect(await ask(c, port, 'R', '1;;b')).toBe('A b');
    expect(await ask(c, port, 'R', '1;;c')).toMatch(/^E 6;/);
  });

  it('reports a port in use as a PeerdexError that says so', async () => {
    const { port } = await startServer();
    const err = await IndexServer.listen({ port, host: '127.0.0.1' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PeerdexError);
    expect((err as PeerdexError).code).toBe('ERR_USAGE');
    expect((err as Error).message).toMatch(/already in use/);
    expect((err as Error).message).toContain(String(port));
  });

  it('close() is idempotent', async () => {
    const server = await IndexServer.listen({ port: 0, host: '127.0.0.1' });
    const first = server.close();
    const second = server.close();
    expect(second).toBe(first);
    await first;
  });

  it('treats ::ffff:a.b.c.d senders on a dual-stack socket as IPv4', async (ctx) => {
    let server: IndexServer;
    try {
      server = await IndexServer.listen({ port: 0, host: '::' });
    } catch {
      ctx.skip();
      return;
    }
    servers.push(server);
    const port = server.address().port;
    const c = await client();
    expect(await ask(c, port, 'R', '9100;;a')).toBe('A a');
    expect(await ask(c, port, 'R', '9100;::ffff:127.0.0.1;b')).toBe('A b');
    expect(await ask(c, port, 'S', 'a')).toBe('S 9100;127.0.0.1;a');
    expect(await list(c, port)).toEqual([{ addr: '127.0.0.1', port: 9100, names: ['a', 'b'] }]);
  });

  it('drops a forged datagram from source port 0 instead of crashing', async (ctx) => {
    // Needs a raw socket (root) and python3 to forge the UDP header.
    const probe = spawnSync('python3', ['-c', 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      ctx.skip();
      return;
    }
    const { port, server } = await startServer();
    const script = [
      'import socket, struct, sys',
      's = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)',
      "payload = b'O' + bytes(99)",
      "s.sendto(struct.pack('!HHHH', 0, int(sys.argv[1]), 8 + len(payload), 0) + payload, ('127.0.0.1', 0))",
    ].join('\n');
    expect(spawnSync('python3', ['-c', script, String(port)], { encoding: 'utf8' }).status).toBe(0);
    const deadline = Date.now() + 2000;
    while (server.stats.received === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(server.stats).toMatchObject({ received: 1, dropped: 1, replies: 0 });
    const c = await client();
    expect(await ask(c, port, 'O')).toBe('O 0');
  });
});
