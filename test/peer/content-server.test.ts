/**
 * ContentServer over real TCP on 127.0.0.1 (port 0), driven by raw sockets so every byte of
 * PROTOCOL.md section 2 is checked: the C header, the frames, E answers and connection rules.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ContentServer, type ContentServerOptions } from '../../src/peer/content-server.js';
import { FileLibrary } from '../../src/peer/file-library.js';
import { binaryContent, delay, expectedHeader, Fixtures, MiB, PDU_BYTES, rawPdu, RawClient, sha256Text, type RawAnswer, waitFor } from '../helpers/peer-fixtures.js';

const SIZE = 5 * MiB;
const content = binaryContent(SIZE, 7);
const digest = sha256Text(content);

const fx = new Fixtures();
let dir: string;
let port: number;
let server: ContentServer;

afterEach(() => fx.cleanup());

async function start(options: Partial<ContentServerOptions> = {}) {
  const started = await fx.contentServer(dir, options);
  server = started.server;
  port = started.port;
  return started;
}

beforeEach(async () => {
  dir = await fx.tempDir();
  await writeFile(join(dir, 'blob.bin'), content);
  await writeFile(join(dir, 'empty.txt'), '');
});

function expectC(answer: RawAnswer): Extract<RawAnswer, { type: 'C' }> {
  if (answer.type !== 'C') throw new Error(`expected a C answer, got E ${answer.code} ${answer.description}`);
  return answer;
}

function expectE(answer: RawAnswer, code: number): void {
  expect(answer.type === 'E' ? answer.code : `C ${answer.type === 'C' ? answer.size : ''}`).toBe(code);
}

/** Checks the frames of an answer: ids 0.., lengths 1..1 MiB, adding up to the size. */
function checkFrames(a: Extract<RawAnswer, { type: 'C' }>): void {
  expect(a.frames.length).toBe(a.numPackets);
  a.frames.forEach((f, i) => {
    expect(f.id).toBe(i);
    expect(f.length).toBeGreaterThanOrEqual(1);
    expect(f.length).toBeLessThanOrEqual(MiB);
  });
  expect(a.frames.reduce((n, f) => n + f.length, 0)).toBe(a.size);
}

const D = (data: string) => rawPdu('D', data);

describe('whole files', () => {
  it('sends a 5 MiB binary file byte for byte with an exact C header', async () => {
    await start();
    const c = await fx.raw(port);
    await c.write(D('blob.bin'));
    const a = expectC(await c.readAnswer());
    expect(a.header.equals(expectedHeader(5, SIZE, digest))).toBe(true);
    checkFrames(a);
    expect(a.content.equals(content)).toBe(true);
    await delay(20);
    expect(c.buffered).toBe(0); // nothing after the last frame
  });

  it('answers an empty file with 0;0;sha256 and no frames', async () => {
    await start();
    const c = await fx.raw(port);
    await c.write(D('empty.txt'));
    const a = expectC(await c.readAnswer());
    expect(a.header.equals(expectedHeader(0, 0, sha256Text(Buffer.alloc(0))))).toBe(true);
    expect(a.frames).toEqual([]);
    await delay(20);
    expect(c.buffered).toBe(0);
  });

  it('serves names that are valid but unusual (spaces, UTF-8, a leading dot with includeHidden)', async () => {
    const names = ['with space.txt', 'ünïcødé-文件', '.hidden', 'x'.repeat(25)];
    for (const [i, name] of names.entries()) await writeFile(join(dir, name), `content ${i}`);
    await start({ library: new FileLibrary(dir, { includeHidden: true }) });
    const c = await fx.raw(port);
    for (const [i, name] of names.entries()) {
      await c.write(D(name));
      const a = expectC(await c.readAnswer());
      expect(a.content.toString()).toBe(`content ${i}`);
    }
  });
});

describe('ranges', () => {
  const cases: [string, number, number][] = [
    ['a middle range across frame borders', 1000, 2 * MiB + 17],
    ['to the end with length 0', 3_000_001, 0],
    ['one byte at the very end', SIZE - 1, 1],
    ['exactly up to the end', SIZE - 880, 880],
    ['the whole file as a range', 0, SIZE],
  ];
  it.each(cases)('sends %s', async (_label, offset, length) => {
    await start();
    const c = await fx.raw(port);
    await c.write(D(`blob.bin;${offset};${length}`));
    const a = expectC(await c.readAnswer());
    const want = content.subarray(offset, length === 0 ? SIZE : offset + length);
    expect(a.size).toBe(want.length);
    expect(a.header.equals(expectedHeader(Math.ceil(want.length / MiB), want.length, digest))).toBe(true);
    checkFrames(a);
    expect(a.content.equals(want)).toBe(true);
  });

  it('answers offset == size with length 0 as an empty answer carrying the whole-file digest', async () => {
    await start();
    const c = await fx.raw(port);
    await c.write(D(`blob.bin;${SIZE};0`));
    const a = expectC(await c.readAnswer());
    expect(a.header.equals(expectedHeader(0, 0, digest))).toBe(true);
    await delay(20);
    expect(c.buffered).toBe(0);
  });

  it.each([[`${SIZE};1`], [`${SIZE - 10};11`], [`${SIZE + 1};0`], [`0;${SIZE + 1}`], ['9007199254740991;9007199254740991']])(
    'refuses the range %s past the end with E 4 and keeps the connection',
    async (range) => {
      await start();
      const c = await fx.raw(port);
      await c.write(D(`blob.bin;${range}`));
      expectE(await c.readAnswer(), 4);
      await c.write(D('empty.txt'));
      expectC(await c.readAnswer());
    },
  );

  it.each([['blob.bin;5'], ['blob.bin;x;0'], ['blob.bin;-1;0'], ['blob.bin;1;2;3'], ['blob.bin;;'], ['blob.bin;1.5;0']])(
    'refuses the malformed request %j with E 4',
    async (data) => {
      await start();
      const c = await fx.raw(port);
      await c.write(D(data));
      expectE(await c.readAnswer(), 4);
    },
  );
});

describe('connections', () => {
  it('answers several D requests on one connection and keeps it open', async () => {
    await start();
    const c = await fx.raw(port);
    for (const [data, want] of [
      ['blob.bin;0;10', content.subarray(0, 10)],
      ['empty.txt', Buffer.alloc(0)],
      ['missing', undefined],
      ['blob.bin', content],
      [`blob.bin;${SIZE - 3};0`, content.subarray(SIZE - 3)],
    ] as const) {
      await c.write(D(data));
      const a = await c.readAnswer();
      if (want === undefined) expectE(a, 3);
      else expect(expectC(a).content.equals(want)).toBe(true);
    }
    expect(c.closed).toBe(false);
  });

  it('answers requests sent ahead (pipelined) in order', async () => {
    await start();
    const c = await fx.raw(port);
    await c.write(Buffer.concat([D('blob.bin;5;3'), D('nope'), D('blob.bin;0;0'), D('blob.bin;1;1')]));
    expect(expectC(await c.readAnswer()).content.equals(content.subarray(5, 8))).toBe(true);
    expectE(await c.readAnswer(), 3);
    expect(expectC(await c.readAnswer()).content.equals(content)).toBe(true);
    expect(expectC(await c.readAnswer()).content.equals(content.subarray(1, 2))).toBe(true);
  });

  it('still sends the whole answer to a client that half-closes after its request', async () => {
    await start();
    const c = await fx.raw(port);
    await c.write(D('blob.bin'));
    c.socket.end(); // "I have nothing more to ask" - the answer must still arrive in full
    const a = expectC(await c.readAnswer());
    expect(a.content.equals(content)).toBe(true);
    await c.waitClosed(2000); // and then the server closes its side
  });

  it('serves 20 concurrent downloads, all byte-identical', async () => {
    await start({ maxConnectionsPerSource: 20 });
    const clients = await Promise.all(Array.from({ length: 20 }, () => fx.raw(port)));
    const answers = await Promise.all(
      clients.map(async (c, i) => {
        // Half of them ask for the whole file, half for a range, all at once.
        const offset = i % 2 === 0 ? 0 : i * 1000;
        await c.write(D(offset === 0 ? 'blob.bin' : `blob.bin;${offset};0`));
        return { offset, answer: expectC(await c.readAnswer(15_000)) };
      }),
    );
    for (const { offset, answer } of answers) {
      checkFrames(answer);
      expect(answer.sha256).toBe(digest);
      expect(answer.content.equals(content.subarray(offset))).toBe(true);
    }
  });

  it('closes a connection that stays idle', async () => {
    await start({ idleTimeoutMs: 200 });
    const c = await fx.raw(port);
    const t0 = Date.now();
    await c.waitClosed(3000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    await waitFor(() => server.connections === 0, 2000, 'the server to drop the connection');
  });

  it('closes a connection that goes idle after an answer, not during the transfer', async () => {
    // Long enough that a busy test machine never stalls the transfer itself that long.
    await start({ idleTimeoutMs: 1000 });
    const c = await fx.raw(port);
    await c.write(D('blob.bin'));
    expect(expectC(await c.readAnswer()).content.equals(content)).toBe(true);
    await c.waitClosed(3000);
  });

  it('does not let a client that sent half a PDU hold up another client', async () => {
    await start();
    const stuck = await fx.raw(port);
    await stuck.write(D('blob.bin').subarray(0, 50));
    const other = await fx.raw(port);
    await other.write(D('blob.bin'));
    expect(expectC(await other.readAnswer()).content.equals(content)).toBe(true);
    // The stuck one is still being waited for, and is served once the PDU is complete.
    await stuck.write(D('blob.bin').subarray(50));
    expect(expectC(await stuck.readAnswer()).content.equals(content)).toBe(true);
  });

  it('does not let a client that stops reading hold up another client', async () => {
    await start();
    const slow = await fx.raw(port);
    slow.socket.pause(); // never reads: the server's writes to it back up
    await slow.write(Buffer.concat([D('blob.bin'), D('blob.bin'), D('blob.bin')]));
    await delay(50);
    const other = await fx.raw(port);
    await other.write(D('blob.bin'));
    expect(expectC(await other.readAnswer()).content.equals(content)).toBe(true);
  });

  it('refuses connections over the limit with E 6 while every one is busy answering', async () => {
    await writeFile(join(dir, 'big.bin'), Buffer.alloc(24 * MiB)); // more than the kernel buffers hold
    await start({ maxConnections: 2 });
    const busy = await Promise.all([fx.raw(port), fx.raw(port)]);
    for (const b of busy) {
      b.socket.pause(); // never reads: its answer stays under way
      await b.write(D('big.bin'));
    }
    await delay(50);
    const c = await fx.raw(port);
    expectE(await c.readAnswer(), 6);
    await c.waitClosed();
    expect(server.connections).toBe(2);
  });

  it('at the limit closes the connection idle longest to make room, with E 6', async () => {
    const { events } = await start({ maxConnections: 2 });
    const oldest = await fx.raw(port);
    await delay(20);
    const newer = await fx.raw(port);
    await newer.write(D('blob.bin;0;4')); // answered: idle since after the older one
    await newer.readAnswer();
    const c = await fx.raw(port);
    expectE(await oldest.readAnswer(), 6);
    await oldest.waitClosed();
    for (const ok of [newer, c]) {
      await ok.write(D('blob.bin;0;4'));
      expect(expectC(await ok.readAnswer()).content.equals(content.subarray(0, 4))).toBe(true);
    }
    expect(events.some((e) => e.type === 'refused' && /make room/.test(e.reason))).toBe(true);
  });

  it('refuses connections past the per-source limit with E 6 while others are served', async () => {
    await start({ maxConnectionsPerSource: 2 });
    const held = [await fx.raw(port), await fx.raw(port)];
    const third = await fx.raw(port);
    const a = await third.readAnswer();
    expect(a.type === 'E' && a.description).toMatch(/from 127\.0\.0\.1/);
    expectE(a, 6);
    await third.waitClosed();
    held[0].close();
    await waitFor(() => server.connections === 1, 2000, 'the place to be freed');
    const again = await fx.raw(port);
    await again.write(D('blob.bin;0;4'));
    expectC(await again.readAnswer());
  });

  it('cuts off an over-limit client that keeps its side open, and close() does not wait for it', async () => {
    await start({ maxConnections: 1, idleTimeoutMs: 300 });
    await fx.raw(port);
    await delay(20);
    // allowHalfOpen: this client does not close its side when the server ends, like a careless one.
    const stubborn = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    fx.track(() => stubborn.destroy());
    stubborn.on('data', () => {});
    stubborn.on('error', () => {});
    await delay(50);
    // Well before its idle timeout would have cut it off.
    const outcome = await Promise.race([server.close().then(() => 'closed'), delay(250).then(() => 'still waiting')]);
    expect(outcome).toBe('closed');
  });

  it('closes the connection once a client that closed its side has its answers', async () => {
    await start();
    const c = await fx.raw(port);
    c.socket.end();
    await c.waitClosed(2000);
  });

  it('close() ends open connections and resolves; calling it again is fine', async () => {
    await start();
    const c = await fx.raw(port);
    await c.write(D('blob.bin;0;1'));
    await c.readAnswer();
    await server.close();
    await c.waitClosed(2000);
    await server.close();
    await expect(RawClient.connect(port)).rejects.toThrow();
  });
});

describe('refusals', () => {
  it.each([['../x'], ['/etc/passwd'], ['..'], ['.'], ['a/b'], ['a\\b'], ['bad\x01name'], ['tab\there'], ['del\x7f'], ['c1\u0085'], ['esc\x1b[31m'], ['x'.repeat(26)], ['']])(
    'refuses the unsafe name %j with E 4',
    async (name) => {
      await start();
      const c = await fx.raw(port);
      await c.write(D(name));
      expectE(await c.readAnswer(), 4);
      expect(c.closed).toBe(false);
    },
  );

  it('refuses a name that is not valid UTF-8 with E 4', async () => {
    await start();
    const c = await fx.raw(port);
    await c.write(rawPdu('D', Buffer.from([0x61, 0xff, 0xfe])));
    expectE(await c.readAnswer(), 4);
  });

  it('answers a missing file with E 3', async () => {
    await start();
    const c = await fx.raw(port);
    await c.write(D('no-such-file'));
    const a = await c.readAnswer();
    expectE(a, 3);
    expect(a.type === 'E' && a.bytes.length).toBe(PDU_BYTES);
  });

  it('does not serve a symlink that leads out of the folder (E 3)', async () => {
    const outside = await fx.tempDir();
    await writeFile(join(outside, 'secret'), 'top secret');
    await symlink(join(outside, 'secret'), join(dir, 'link-out'));
    await symlink('/etc/passwd', join(dir, 'passwd'));
    await writeFile(join(dir, 'real'), 'inside');
    await symlink(join(dir, 'real'), join(dir, 'link-in'));
    await start();
    const c = await fx.raw(port);
    for (const name of ['link-out', 'passwd']) {
      await c.write(D(name));
      expectE(await c.readAnswer(), 3);
    }
    // A link that stays inside the folder is an ordinary file of the folder.
    await c.write(D('link-in'));
    expect(expectC(await c.readAnswer()).content.toString()).toBe('inside');
  });

  it('does not serve hidden files, or links to them, without includeHidden (E 3)', async () => {
    await writeFile(join(dir, '.secret'), 'hidden');
    await symlink('.secret', join(dir, 'visible-link'));
    await start();
    const c = await fx.raw(port);
    for (const name of ['.secret', 'visible-link']) {
      await c.write(D(name));
      expectE(await c.readAnswer(), 3);
    }
    expect((await new FileLibrary(dir).scan()).files).not.toContain('.secret');
    expect((await new FileLibrary(dir, { includeHidden: true }).scan()).files).toContain('.secret');
  });

  it('does not serve a link to a file in a subfolder, nor a FIFO (E 3)', async () => {
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'deep'), 'deep');
    await symlink(join(dir, 'sub', 'deep'), join(dir, 'link-deep'));
    execFileSync('mkfifo', [join(dir, 'pipe')]);
    await start();
    const c = await fx.raw(port);
    for (const name of ['link-deep', 'pipe']) {
      await c.write(D(name));
      expectE(await c.readAnswer(), 3);
    }
  });

  it('does not serve folders or its own partial downloads (E 3)', async () => {
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, '.peerdex-x.part'), 'partial');
    await start();
    const c = await fx.raw(port);
    for (const name of ['sub', '.peerdex-x.part']) {
      await c.write(D(name));
      expectE(await c.readAnswer(), 3);
    }
  });

  it.each(['R', 'S', 'T', 'O', 'A', 'C', 'E', 'd', 'Z', '\0'])('answers a %j PDU with E 4', async (type) => {
    await start();
    const c = await fx.raw(port);
    await c.write(rawPdu(type, 'blob.bin'));
    expectE(await c.readAnswer(), 4);
    // and the connection still works
    await c.write(D('blob.bin;0;2'));
    expect(expectC(await c.readAnswer()).content.equals(content.subarray(0, 2))).toBe(true);
  });

  it('answers garbage with one E per 100 bytes and keeps serving everyone', async () => {
    await start();
    const junk = binaryContent(4000 + 256, 99).subarray(256); // seeded, so the run is repeatable
    const bad = await fx.raw(port);
    const good = await fx.raw(port);
    await bad.write(junk);
    await good.write(D('blob.bin'));
    expect(expectC(await good.readAnswer()).content.equals(content)).toBe(true);
    for (let i = 0; i < 40; i++) {
      const a = await bad.readAnswer();
      if (a.type !== 'E') throw new Error(`garbage PDU ${i} got a C answer`);
      expect([3, 4]).toContain(a.code); // 3 only if the junk happens to spell a valid name
    }
    // The garbage connection is still in step and served.
    await bad.write(D('blob.bin;0;3'));
    expect(expectC(await bad.readAnswer()).content.equals(content.subarray(0, 3))).toBe(true);
  });

  it('survives clients that connect and vanish mid-transfer', async () => {
    const { events } = await start();
    for (let i = 0; i < 5; i++) {
      const c = await fx.raw(port);
      await c.write(D('blob.bin'));
      await c.read(PDU_BYTES + 9 + 1000);
      c.close();
    }
    const ok = await fx.raw(port);
    await ok.write(D('blob.bin'));
    expect(expectC(await ok.readAnswer()).content.equals(content)).toBe(true);
    expect(events.filter((e) => e.type === 'served').length).toBeGreaterThanOrEqual(1);
  });
});

describe('listen', () => {
  it('reports a taken port as ERR_USAGE', async () => {
    await start();
    await expect(ContentServer.listen({ library: new FileLibrary(dir), port, host: '127.0.0.1' })).rejects.toMatchObject({ code: 'ERR_USAGE' });
  });
});
