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
async function fakeIndex(reply: (msg: Buffer, send: (pdu: Buffer) => void, count: number, from: dgram.RemoteInfo) => void, port = 0): Promise<FakeIndex> {
  const socket = dgram.createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (msg, rinfo) => {
    received.push(msg);
    reply(msg, (pdu) => socket.send(pdu, rinfo.port, rinfo.address), received.length, rinfo);
  });
  await new Promise<void>((resolve) => socket.bind(port, '127.0.0.1', resolve));
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= new Promise<void>((resolve) => socket.close(() => resolve())));
  fx.track(close);
  return { port: socket.address().port, received, send: (pdu, to) => socket.send(pdu, to.port, to.address), close };
}

interface FakeIndex {
  port: number;
  received: Buffer[];
  send: (pdu: Buffer, to: dgram.RemoteInfo) => void;
  close: () => Promise<void>;
}

/** A UDP port on 127.0.0.1 that nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const gone = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => gone.bind(0, '127.0.0.1', resolve));
  const port = gone.address().port;
  await new Promise<void>((resolve) => gone.close(() => resolve()));
  return port;
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

  it('says at once when nothing listens on the UDP port (port unreachable), without using every try', async () => {
    const port = await closedPort();
    const index = new IndexClient({ host: '127.0.0.1', port, timeoutMs: 20, tries: 8 });
    const t0 = Date.now();
    await expect(index.register({ port: 7001, addr: '', filename: 'a.txt' })).rejects.toMatchObject({
      code: 'ERR_CONNECTION',
      message: `nothing is listening on UDP 127.0.0.1:${port} (is index-server running?)`,
    });
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('waits a try or two past "port unreachable", so an index that is restarting is found', async () => {
    const port = await closedPort();
    const index = new IndexClient({ host: '127.0.0.1', port, timeoutMs: 100, tries: 8, refusedTries: 3 });
    const asked = index.search('a.txt');
    await new Promise((r) => setTimeout(r, 30)); // the first try has been refused by now
    await fakeIndex((_msg, send) => send(rawPdu('S', '7001;127.0.0.1;a.txt')), port);
    expect(await asked).toMatchObject({ port: 7001, addr: '127.0.0.1' });
  });

  it('once the index has answered, takes "port unreachable" for a restart, not for "nothing listens"', async () => {
    const O = (data: string) => rawPdu('O', data);
    let stop: () => Promise<void> = async () => {};
    const dying = await fakeIndex((_msg, send) => {
      send(O('2'));
      send(O('127.0.0.1;7001;1'));
      send(O('0;a1'));
      void stop(); // server 2 never comes: the index is gone
    });
    stop = dying.close;
    const index = new IndexClient({ host: '127.0.0.1', port: dying.port, timeoutMs: 20, tries: 3 });
    await expect(index.list()).rejects.toMatchObject({ code: 'ERR_TIMEOUT', message: `index 127.0.0.1:${dying.port} did not answer after 3 tries` });
  });

  it('fails at once, naming the lookup error, when the index host does not resolve', async () => {
    const index = new IndexClient({ host: 'nosuchhost.invalid', port: 9000, timeoutMs: 1000, tries: 8 });
    const t0 = Date.now();
    const err = await index.search('a.txt').catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'ERR_CONNECTION',
      message: expect.stringMatching(/^cannot resolve index host nosuchhost\.invalid: (ENOTFOUND|EAI_AGAIN|EAI_FAIL|ENODATA)$/),
    });
    expect(Date.now() - t0).toBeLessThan(1000); // no try was waited for
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

describe('against forged and hostile replies', () => {
  it('ignores a forged S reply from another port, even when it comes first', async () => {
    const forger = await fakeIndex(() => {});
    const index = await fakeIndex((msg, send, _n, from) => {
      // The forger learns the client's port and answers at once; the index answers later.
      forger.send(rawPdu('S', '6666;10.6.6.6;a.txt'), from);
      setTimeout(() => send(rawPdu('S', `7001;127.0.0.1;a.txt;${sha}`)), 50);
    });
    const client = new IndexClient({ host: '127.0.0.1', port: index.port, timeoutMs: 500, tries: 2 });
    expect(await client.search('a.txt')).toEqual({ port: 7001, addr: '127.0.0.1', filename: 'a.txt', sha256: sha });
  });

  it('ignores forged A, E and O replies from another port too', async () => {
    const forger = await fakeIndex(() => {});
    const index = await fakeIndex((msg, send, _n, from) => {
      for (const pdu of [rawPdu('A', 'a.txt'), rawPdu('E', '5;forged'), rawPdu('O', '0')]) forger.send(pdu, from);
      setTimeout(() => send(msg[0] === 0x4f ? rawPdu('O', '1') : rawPdu('E', '3;none')), 50);
      if (msg[0] === 0x4f) setTimeout(() => [rawPdu('O', '127.0.0.1;7001;1'), rawPdu('O', '0;real')].forEach(send), 60);
    });
    const client = new IndexClient({ host: '127.0.0.1', port: index.port, timeoutMs: 500, tries: 2 });
    await expect(client.deregister({ port: 7001, addr: '', filename: 'a.txt' })).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
    expect(await client.list()).toEqual([{ addr: '127.0.0.1', port: 7001, names: ['real'] }]);
  });

  it('refuses an S reply with an empty address, waiting for a good one', async () => {
    const index = await fakeIndex((_msg, send, n) => send(rawPdu('S', n === 1 ? '7001;;a.txt' : '7001;127.0.0.1;a.txt')));
    const client = new IndexClient({ host: '127.0.0.1', port: index.port, timeoutMs: 30, tries: 3 });
    expect(await client.search('a.txt')).toMatchObject({ port: 7001, addr: '127.0.0.1' });
  });

  it('ends with a clear error when the index only ever sends S replies with an empty address', async () => {
    const index = await fakeIndex((_msg, send) => send(rawPdu('S', '7001;;a.txt')));
    const client = new IndexClient({ host: '127.0.0.1', port: index.port, timeoutMs: 20, tries: 3 });
    await expect(client.search('a.txt')).rejects.toMatchObject({
      code: 'ERR_MALFORMED_PDU',
      message: `index 127.0.0.1:${index.port} answered the search for "a.txt" with no holder address`,
    });
  });

  it('ends a listing that announces 10^9 servers at once with one clear line', async () => {
    const index = await fakeIndex((_msg, send) => send(rawPdu('O', '1000000000')));
    const client = new IndexClient({ host: '127.0.0.1', port: index.port, timeoutMs: 200, tries: 8 });
    const t0 = Date.now();
    await expect(client.list()).rejects.toMatchObject({
      code: 'ERR_MALFORMED_PDU',
      message: `index 127.0.0.1:${index.port} announced 1000000000 servers in its listing, over the limit of 2000000`,
    });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(index.received).toHaveLength(1);
  });

  it('ends a listing whose server announces 10^9 packets, and honours smaller limits', async () => {
    const index = await fakeIndex((_msg, send) => [rawPdu('O', '3'), rawPdu('O', '127.0.0.1;7001;2'), rawPdu('O', '127.0.0.1;7002;1000000000')].forEach(send));
    const client = new IndexClient({ host: '127.0.0.1', port: index.port, timeoutMs: 200 });
    await expect(client.list()).rejects.toMatchObject({ code: 'ERR_MALFORMED_PDU', message: expect.stringContaining('announced 1000000002 packets of names in its listing') });
    const strict = new IndexClient({ host: '127.0.0.1', port: index.port, timeoutMs: 200, maxListServers: 2 });
    await expect(strict.list()).rejects.toMatchObject({ message: expect.stringContaining('announced 3 servers in its listing, over the limit of 2') });
  });

  it('ends a listing that never finishes (a little progress each try) at the overall deadline', async () => {
    // Each answer brings one new packet of a long server, so no try is ever "wasted".
    const index = await fakeIndex((_msg, send, n) => [rawPdu('O', '1'), rawPdu('O', '127.0.0.1;7001;100000'), rawPdu('O', `${n - 1};x${n}`)].forEach(send));
    const client = new IndexClient({ host: '127.0.0.1', port: index.port, timeoutMs: 10, tries: 3, listDeadlineMs: 300 });
    const t0 = Date.now();
    await expect(client.list()).rejects.toMatchObject({
      code: 'ERR_TIMEOUT',
      message: `index 127.0.0.1:${index.port} did not finish sending its listing within 0.3 s`,
    });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(index.received.length).toBeGreaterThan(3); // progress did keep it going past the tries
  });
});
