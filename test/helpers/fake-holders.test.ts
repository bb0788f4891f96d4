/**
 * Self-test of FakeHolder: raw TCP clients on 127.0.0.1 send hand-built D PDUs and check the
 * bytes of every behaviour, so that tests relying on a fake holder know what it really sends.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeHolder, type FakeHolderOptions } from './fake-holders.js';
import { binaryContent, delay, expectedHeader, Fixtures, rawPdu, sha256Text, type RawClient } from './peer-fixtures.js';

const NAME = 'movie.bin';
const FRAME = 64 * 1024;
const CONTENT = binaryContent(200_000); // 4 frames of 64 KiB: 3 full, 1 of 3,392 bytes
const SHA = sha256Text(CONTENT);
const flipped = (b: Buffer): Buffer => Buffer.from(b.map((x) => x ^ 0xff));

const fx = new Fixtures();
afterEach(() => fx.cleanup());

/** A holder of CONTENT (unless told otherwise) and one raw connection to it. */
async function setup(opts: Partial<FakeHolderOptions> = {}): Promise<{ holder: FakeHolder; client: RawClient }> {
  const holder = await FakeHolder.start({ name: NAME, content: CONTENT, ...opts });
  fx.track(() => holder.close());
  return { holder, client: await fx.raw(holder.port) };
}

/** Sends one D PDU with `data` as its text. */
const ask = (client: RawClient, data: string): Promise<void> => client.write(rawPdu('D', data));

/** Reads one frame head and its payload of `take` bytes (the announced length by default). */
async function readFrame(client: RawClient, take?: number): Promise<{ id: number; length: number; payload: Buffer }> {
  const head = await client.read(9);
  expect(head[0]).toBe(0x43);
  const length = head.readUInt32BE(5);
  return { id: head.readUInt32BE(1), length, payload: await client.read(take ?? length) };
}

/** Asserts that nothing arrives for a while and the connection stays open. */
async function expectSilence(client: RawClient, ms = 100): Promise<void> {
  await delay(ms);
  expect(client.buffered).toBe(0);
  expect(client.closed).toBe(false);
}

describe('FakeHolder', () => {
  it('honest: whole file, then ranges, on one connection', async () => {
    const { holder, client } = await setup();
    await ask(client, NAME);
    const whole = await client.readAnswer();
    expect(whole.type === 'C' && whole.header).toEqual(expectedHeader(4, 200_000, SHA));
    expect(whole.type === 'C' && whole.frames).toEqual([
      { id: 0, length: FRAME },
      { id: 1, length: FRAME },
      { id: 2, length: FRAME },
      { id: 3, length: 200_000 - 3 * FRAME },
    ]);
    expect(whole.type === 'C' && whole.content.equals(CONTENT)).toBe(true);

    await ask(client, `${NAME};1000;70000`);
    const range = await client.readAnswer();
    expect(range.type === 'C' && range.header).toEqual(expectedHeader(2, 70_000, SHA));
    expect(range.type === 'C' && range.content.equals(CONTENT.subarray(1000, 71_000))).toBe(true);

    await ask(client, `${NAME};150000;0`); // length 0: to the end
    const tail = await client.readAnswer();
    expect(tail.type === 'C' && tail.content.equals(CONTENT.subarray(150_000))).toBe(true);

    expect(holder.requests).toEqual([
      { name: NAME, offset: 0, length: 0 },
      { name: NAME, offset: 1000, length: 70_000 },
      { name: NAME, offset: 150_000, length: 0 },
    ]);
    expect(holder.bytesSent).toBe(200_000 + 70_000 + 50_000);
  });

  it('range rules: unknown name E 3, past the end E 4, not a D E 4; the connection stays usable', async () => {
    const { holder, client } = await setup({ content: binaryContent(10), frameSize: 4 });
    const answers = [];
    for (const data of ['other.bin', `${NAME};5;6`, `${NAME};11;0`, `${NAME};x;1`]) {
      await ask(client, data);
      answers.push(await client.readAnswer());
    }
    await client.write(rawPdu('S', NAME));
    answers.push(await client.readAnswer());
    expect(answers.map((a) => a.type === 'E' && a.code)).toEqual([3, 4, 4, 4, 4]);
    expect(holder.requests.map((r) => r.offset)).toEqual([0, 5, 11]);

    await ask(client, `${NAME};10;0`); // the empty range at the end: a header and no frames
    const empty = await client.readAnswer();
    expect(empty.type === 'C' && empty.header).toEqual(expectedHeader(0, 0, sha256Text(binaryContent(10))));
  });

  it('wrong-bytes: right header, every payload byte flipped', async () => {
    const { client } = await setup({ behaviour: { kind: 'wrong-bytes' } });
    await ask(client, `${NAME};7;100000`);
    const a = await client.readAnswer();
    expect(a.type === 'C' && a.header).toEqual(expectedHeader(2, 100_000, SHA));
    expect(a.type === 'C' && a.content.equals(flipped(CONTENT.subarray(7, 100_007)))).toBe(true);
  });

  it('wrong-bytes-after: honest up to N payload bytes across requests, flipped after', async () => {
    const { client } = await setup({ behaviour: { kind: 'wrong-bytes-after', bytes: 1000 }, frameSize: 300 });
    await ask(client, `${NAME};0;600`);
    const first = await client.readAnswer();
    expect(first.type === 'C' && first.content.equals(CONTENT.subarray(0, 600))).toBe(true);
    await ask(client, `${NAME};0;800`);
    const second = await client.readAnswer();
    const want = Buffer.concat([CONTENT.subarray(0, 400), flipped(CONTENT.subarray(400, 800))]);
    expect(second.type === 'C' && second.content.equals(want)).toBe(true);
  });

  it('header-size: claims 1 TB with the right digest, sends the real frames, stays open', async () => {
    const { client } = await setup({ content: binaryContent(1000), frameSize: 400, behaviour: { kind: 'header-size', size: 1e12 } });
    await ask(client, NAME);
    expect(await client.read(100)).toEqual(expectedHeader(Math.ceil(1e12 / 400), 1e12, sha256Text(binaryContent(1000))));
    const frames = [await readFrame(client), await readFrame(client), await readFrame(client)];
    expect(frames.map((f) => [f.id, f.length])).toEqual([
      [0, 400],
      [1, 400],
      [2, 200],
    ]);
    expect(Buffer.concat(frames.map((f) => f.payload)).equals(binaryContent(1000))).toBe(true);
    await expectSilence(client);
  });

  it('other-digest: honest frames under a header with a digest of other content', async () => {
    const { client } = await setup({ behaviour: { kind: 'other-digest' } });
    await ask(client, NAME);
    const a = await client.readAnswer();
    expect(a.type === 'C' && a.sha256).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a.type === 'C' && a.sha256).not.toBe(SHA);
    expect(a.type === 'C' && a.content.equals(CONTENT)).toBe(true);
  });

  it('trickle: honest bytes at the given rate', async () => {
    const { client } = await setup({ content: binaryContent(20), behaviour: { kind: 'trickle', bytesPerSecond: 500 } });
    const started = Date.now();
    await ask(client, NAME);
    const a = await client.readAnswer();
    expect(a.type === 'C' && a.content.equals(binaryContent(20))).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(30); // 20 bytes at 2 ms each, with slack
  });

  it('stall-after-header: the header, then nothing, even for a second request', async () => {
    const { holder, client } = await setup({ behaviour: { kind: 'stall-after-header' } });
    await ask(client, NAME);
    expect(await client.read(100)).toEqual(expectedHeader(4, 200_000, SHA));
    await ask(client, NAME);
    await expectSilence(client);
    expect(holder.bytesSent).toBe(0);
    await holder.close(); // close() must end the open connection
    await client.waitClosed();
  });

  it('past-size: honest frames, then one extra frame', async () => {
    const { holder, client } = await setup({ frameSize: 100, content: binaryContent(250), behaviour: { kind: 'past-size' } });
    await ask(client, NAME);
    const a = await client.readAnswer();
    expect(a.type === 'C' && [a.numPackets, a.content.equals(binaryContent(250))]).toEqual([3, true]);
    const extra = await readFrame(client);
    expect(extra.id).toBe(3);
    expect(holder.bytesSent).toBe(250 + extra.length);
  });

  it('wrong-frame-id: the second frame, or the only one, has a wrong packet_id', async () => {
    const { holder, client } = await setup({ behaviour: { kind: 'wrong-frame-id' } });
    await ask(client, NAME);
    const a = await client.readAnswer();
    expect(a.type === 'C' && a.frames.map((f) => f.id)).toEqual([0, 2, 2, 3]);
    await ask(client, `${NAME};0;10`);
    const single = await client.readAnswer();
    expect(single.type === 'C' && single.frames.map((f) => f.id)).toEqual([1]);
    expect(holder.requests).toHaveLength(2);
  });

  it('close-after: cuts the frame that crosses N payload bytes and closes', async () => {
    const { holder, client } = await setup({ behaviour: { kind: 'close-after', bytes: 100_000 } });
    await ask(client, NAME);
    expect(await client.read(100)).toEqual(expectedHeader(4, 200_000, SHA));
    const first = await readFrame(client);
    const cut = await readFrame(client, 100_000 - FRAME);
    expect([first.id, first.length, cut.id, cut.length]).toEqual([0, FRAME, 1, FRAME]);
    expect(Buffer.concat([first.payload, cut.payload]).equals(CONTENT.subarray(0, 100_000))).toBe(true);
    await client.waitClosed();
    expect(client.buffered).toBe(0);
    expect(holder.bytesSent).toBe(100_000);
  });

  it('refuse: E 3 for every D, which is still recorded', async () => {
    const { holder, client } = await setup({ behaviour: { kind: 'refuse' } });
    await ask(client, NAME);
    const a = await client.readAnswer();
    expect(a.type === 'E' && a.code).toBe(3);
    holder.setBehaviour({ kind: 'honest' });
    await ask(client, `${NAME};0;5`);
    const b = await client.readAnswer();
    expect(b.type === 'C' && b.content.equals(CONTENT.subarray(0, 5))).toBe(true);
    expect(holder.requests).toEqual([
      { name: NAME, offset: 0, length: 0 },
      { name: NAME, offset: 0, length: 5 },
    ]);
  });

  it('close() is idempotent and stops a trickle under way', async () => {
    const { holder, client } = await setup({ behaviour: { kind: 'trickle', bytesPerSecond: 10 } });
    await ask(client, NAME);
    await client.read(100);
    await Promise.all([holder.close(), holder.close()]);
    await client.waitClosed();
    await holder.close();
  });
});
