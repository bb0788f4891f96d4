/**
 * IndexClient over real UDP on 127.0.0.1: against an in-process IndexServer, and against
 * small fake indexes that stay silent, refuse, lose or garble replies.
 */
import dgram from 'node:dgram';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IndexClient } from '../../src/peer/index-client.js';
import { Fixtures, rawPdu, sha256Text } from '../helpers/peer-fixtures.js';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

const sha = sha256Text(Buffer.from('content'));

/** A UDP socket on 127.0.0.1 that hands every datagram to `reply` (which may answer or not). */
async function fakeIndex(reply: (msg: Buffer, send: (pdu: Buffer) => void, count: number) => void): Promise<{ port: number; received: Buffer[] }> {
  const socket = dgram.createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (msg, rinfo) => {
    received.push(msg);
    reply(msg, (pdu) => socket.send(pdu, rinfo.port, rinfo.address), received.length);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  fx.track(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { port: socket.address().port, received };
}

describe('against an IndexServer', () => {
  let index: IndexClient;
  beforeEach(async () => {
    const { port } = await fx.index();
    index = fx.indexClient(port);
  });

  it('registers, searches, lists and deregisters', async () => {
    await index.register({ port: 7001, addr: '', filename: 'a.txt', sha256: sha });
    await index.register({ port: 7001, addr: '127.0.0.1', filename: 'b.txt' });
    await index.register({ port: 7002, addr: '', filename: 'a.txt' });
    expect(await index.search('b.txt')).toEqual({ port: 7001, addr: '127.0.0.1', filename: 'b.txt', sha256: undefined });
    const holders = [await index.search('a.txt'), await index.search('a.txt')];
    expect(holders.map((h) => h.port).sort()).toEqual([7001, 7002]);
    expect(holders.find((h) => h.port === 7001)?.sha256).toBe(sha);
    const listed = await index.list();
    expect(listed.map((s) => ({ ...s, names: [...s.names].sort() })).sort((x, y) => x.port - y.port)).toEqual([
      { addr: '127.0.0.1', port: 7001, names: ['a.txt', 'b.txt'] },
      { addr: '127.0.0.1', port: 7002, names: ['a.txt'] },
    ]);
    await index.deregister({ port: 7002, addr: '', filename: 'a.txt' });
    expect(await index.search('a.txt')).toMatchObject({ port: 7001 });
    expect(await index.search('a.txt')).toMatchObject({ port: 7001 });
  });

  it('lists an empty index as no servers', async () => {
    expect(await index.list()).toEqual([]);
  });

  it('lists many names over several packets and servers', async () => {
    const names = Array.from({ length: 30 }, (_, i) => `file-${String(i).padStart(2, '0')}-${'x'.repeat(i % 15)}`);
    for (const [i, name] of names.entries()) await index.register({ port: 7000 + (i % 3), addr: '', filename: name });
    const listed = await index.list();
    expect(listed).toHaveLength(3);
    expect(listed.flatMap((s) => s.names).sort()).toEqual([...names].sort());
  });

  it('reports a name nobody holds as ERR_NOT_FOUND', async () => {
    await expect(index.search('nothing')).rejects.toMatchObject({ code: 'ERR_NOT_FOUND', message: 'no peer has "nothing"' });
  });

  it('reports deregistering a missing registration as ERR_NOT_FOUND', async () => {
    await expect(index.deregister({ port: 7001, addr: '', filename: 'never.txt' })).rejects.toMatchObject({ code: 'ERR_NOT_FOUND', remoteCode: 3 });
  });

  it('reports a claimed address as ERR_REMOTE with E 5, without retrying', async () => {
    await expect(index.register({ port: 7001, addr: '10.1.2.3', filename: 'a.txt' })).rejects.toMatchObject({ code: 'ERR_REMOTE', remoteCode: 5 });
  });

  it('leave() drops every registration from this address', async () => {
    await index.register({ port: 7001, addr: '', filename: 'a.txt' });
    await index.register({ port: 7002, addr: '', filename: 'b.txt' });
    await index.leave();
    // leave() has no reply: wait until the index has acted on it
    for (let i = 0; i < 100 && (await index.list()).length > 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(await index.list()).toEqual([]);
  });
});

describe('against a silent or difficult index', () => {
  it('gives up after the set number of tries with ERR_TIMEOUT', async () => {
    const silent = await fakeIndex(() => {});
    const index = new IndexClient({ host: '127.0.0.1', port: silent.port, timeoutMs: 20, tries: 3 });
    const t0 = Date.now();
    await expect(index.search('a.txt')).rejects.toMatchObject({
      code: 'ERR_TIMEOUT',
      message: `index 127.0.0.1:${silent.port} did not answer after 3 tries`,
    });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(silent.received).toHaveLength(3);
    for (const m of silent.received) expect(m.length).toBe(100);
  });

  it('gives up with ERR_TIMEOUT when nothing listens on the port at all', async () => {
    const gone = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => gone.bind(0, '127.0.0.1', resolve));
    const port = gone.address().port;
    await new Promise<void>((resolve) => gone.close(() => resolve()));
    const index = new IndexClient({ host: '127.0.0.1', port, timeoutMs: 20, tries: 2 });
    await expect(index.register({ port: 7001, addr: '', filename: 'a.txt' })).rejects.toMatchObject({
      code: 'ERR_TIMEOUT',
      message: `index 127.0.0.1:${port} did not answer after 2 tries`,
    });
  });

  it('retries after a lost reply and succeeds', async () => {
    const lossy = await fakeIndex((_msg, send, n) => {
      if (n >= 3) send(rawPdu('S', `7001;127.0.0.1;a.txt;${sha}`));
    });
    const index = new IndexClient({ host: '127.0.0.1', port: lossy.port, timeoutMs: 20, tries: 5 });
    expect(await index.search('a.txt')).toEqual({ port: 7001, addr: '127.0.0.1', filename: 'a.txt', sha256: sha });
    expect(lossy.received.length).toBeGreaterThanOrEqual(3); // more if the machine is slow
  });

  it('treats E 2 and E 6 as "try again"', async () => {
    const busy = await fakeIndex((_msg, send, n) => send(n === 1 ? rawPdu('E', '6;busy') : n === 2 ? rawPdu('E', '2;again') : rawPdu('A', 'a.txt')));
    const index = new IndexClient({ host: '127.0.0.1', port: busy.port, timeoutMs: 20, tries: 5 });
    await index.register({ port: 7001, addr: '', filename: 'a.txt' });
    expect(busy.received.length).toBeGreaterThanOrEqual(3);
  });

  it('reports the refusal, not a timeout, when the index stays busy', async () => {
    const busy = await fakeIndex((_msg, send) => send(rawPdu('E', '6;over the limit')));
    const index = new IndexClient({ host: '127.0.0.1', port: busy.port, timeoutMs: 20, tries: 3 });
    await expect(index.register({ port: 7001, addr: '', filename: 'a.txt' })).rejects.toMatchObject({
      code: 'ERR_REMOTE',
      remoteCode: 6,
      message: expect.stringContaining('over the limit'),
    });
  });

  it('ignores garbage and replies about other names while waiting for its answer', async () => {
    const noisy = await fakeIndex((_msg, send) => {
      send(Buffer.from('short junk'));
      send(rawPdu('Z', 'what'));
      send(rawPdu('S', '1;127.0.0.1;other.txt'));
      send(rawPdu('A', 'other.txt'));
      send(rawPdu('S', '7001;127.0.0.1;a.txt'));
    });
    const index = new IndexClient({ host: '127.0.0.1', port: noisy.port, timeoutMs: 200, tries: 2 });
    expect(await index.search('a.txt')).toMatchObject({ port: 7001, filename: 'a.txt' });
    expect(noisy.received.length).toBeGreaterThanOrEqual(1);
  });

  it('asks for the list again when a PDU of the O sequence is lost, and merges what came', async () => {
    const O = (data: string) => rawPdu('O', data);
    const lossy = await fakeIndex((_msg, send, n) => {
      send(O('2'));
      if (n === 1) {
        // first answer: server A complete, server B loses its packet 1
        send(O('127.0.0.1;7001;1'));
        send(O('0;a1;a2'));
        send(O('127.0.0.1;7002;2'));
        send(O('0;b1'));
      } else {
        // second answer: A's packet is lost this time, B arrives whole
        send(O('127.0.0.1;7001;1'));
        send(O('127.0.0.1;7002;2'));
        send(O('0;b1'));
        send(O('1;b2;b3'));
      }
    });
    const index = new IndexClient({ host: '127.0.0.1', port: lossy.port, timeoutMs: 50, tries: 4 });
    const listed = await index.list();
    expect(listed.sort((x, y) => x.port - y.port)).toEqual([
      { addr: '127.0.0.1', port: 7001, names: ['a1', 'a2'] },
      { addr: '127.0.0.1', port: 7002, names: ['b1', 'b2', 'b3'] },
    ]);
    expect(lossy.received.length).toBeGreaterThanOrEqual(2);
  });
});
