/**
 * The content server under abuse, on real sockets on loopback (issue 10): slow and silent
 * clients from one address against a downloader from another (127.0.0.2 vs 127.0.0.1; Linux
 * routes all of 127.0.0.0/8 to lo), a request trickled a byte at a time, a downloader that
 * never reads, and a symlink swapped in and out of the folder during thousands of requests.
 * Timeouts are made small through options; nothing asserts how fast anything is.
 * FIGURES=1 prints the figures measured.
 */
import { spawn } from 'node:child_process';
import { link, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ContentServerOptions } from '../../src/peer/content-server.js';
import { binaryContent, delay, Fixtures, MiB, rawPdu, RawClient, sha256Text, waitFor } from '../helpers/peer-fixtures.js';

const fx = new Fixtures();
const figures: string[] = [];
let dir: string;
const content = binaryContent(3 * MiB, 5);

afterEach(() => fx.cleanup());
afterAll(() => {
  if (process.env.FIGURES) console.log(figures.join('\n'));
});

beforeEach(async () => {
  dir = await fx.tempDir();
  await writeFile(join(dir, 'blob.bin'), content);
});

const D = (data: string) => rawPdu('D', data);

/** A raw socket from `localAddress` that never reads what it is sent. */
function connectFrom(localAddress: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    s.on('error', () => {});
    fx.track(() => s.destroy());
    s.once('connect', () => resolve(s));
    s.once('close', () => reject(new Error('closed before connecting')));
  });
}

/** Keeps writing one byte of a D PDU every `everyMs` until the socket closes; resolves with the bytes sent. */
function trickle(s: net.Socket, everyMs: number): Promise<number> {
  const pdu = D('blob.bin');
  let sent = 0;
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (s.destroyed || s.writableEnded) return;
      s.write(pdu.subarray(sent % pdu.length, (sent % pdu.length) + 1));
      sent++;
    }, everyMs);
    s.once('close', () => {
      clearInterval(timer);
      resolve(sent);
    });
    fx.track(() => clearInterval(timer));
  });
}

async function start(options: Partial<ContentServerOptions> = {}) {
  return fx.contentServer(dir, options);
}

/** Downloads blob.bin from 127.0.0.1 and returns how long it took from connecting. */
async function downloadTime(port: number): Promise<number> {
  const t0 = performance.now();
  const c = await fx.raw(port);
  await c.write(D('blob.bin'));
  const a = await c.readAnswer();
  if (a.type !== 'C') throw new Error(`expected a C answer, got E ${a.code} ${a.description}`);
  expect(a.content.equals(content)).toBe(true);
  return performance.now() - t0;
}

describe('slow and silent clients from one address', () => {
  it('with the defaults, 40 silent or trickling connections from 127.0.0.2 do not stop 127.0.0.1', async () => {
    const { server, port } = await start();
    const attackers = await Promise.all(Array.from({ length: 40 }, () => connectFrom('127.0.0.2', port)));
    attackers.filter((_, i) => i % 2 === 1).forEach((s) => void trickle(s, 300));
    await delay(100);
    const ms = await downloadTime(port);
    // Only the per-source limit (16) of them got in; the rest were answered E 6 and closed.
    expect(server.connections).toBeLessThanOrEqual(17);
    figures.push(`per-source limit: 40 slow connections from 127.0.0.2, ${server.connections - 1} admitted; 127.0.0.1 got 3 MiB in ${ms.toFixed(0)} ms`);
  });

  it('when they fill the whole server, the one idle longest makes room for another address', async () => {
    const { server, port, events } = await start({ maxConnections: 8 });
    const attackers = await Promise.all(Array.from({ length: 8 }, () => connectFrom('127.0.0.2', port)));
    const trickled = attackers.map((s) => trickle(s, 300));
    await delay(100);
    expect(server.connections).toBe(8);
    const ms = await downloadTime(port);
    expect(events.filter((e) => e.type === 'refused' && /make room/.test(e.reason)).length).toBeGreaterThanOrEqual(1);
    figures.push(`global limit 8 filled by 127.0.0.2 trickling 1 byte / 300 ms: 127.0.0.1 got 3 MiB in ${ms.toFixed(0)} ms`);
    for (const s of attackers) s.destroy();
    await Promise.all(trickled);
  });
});

describe('request deadline', () => {
  it('closes a connection whose D PDU does not arrive whole within the deadline, however steadily bytes come', async () => {
    // The idle timeout is far away: only the deadline, which bytes do not reset, can act.
    const { port, events } = await start({ requestTimeoutMs: 400, idleTimeoutMs: 60_000 });
    const s = await connectFrom('127.0.0.2', port);
    const answers: Buffer[] = [];
    s.on('data', (d: Buffer) => answers.push(d));
    const t0 = performance.now();
    const sent = await trickle(s, 40); // a whole PDU would take 4 s
    const ms = performance.now() - t0;
    expect(sent).toBeLessThan(100);
    expect(ms).toBeGreaterThanOrEqual(350);
    const answer = Buffer.concat(answers);
    expect(answer.subarray(0, 3).toString()).toBe('E4;');
    expect(events.some((e) => e.type === 'refused' && /not complete within 0.4 s/.test(e.reason))).toBe(true);
    figures.push(`request deadline 0.4 s: a client trickling 1 byte / 40 ms was cut after ${ms.toFixed(0)} ms, ${sent} of 100 bytes sent`);
  });
});

describe('a downloader that never reads', () => {
  it('is cut off after the idle timeout while writes are pending, though it keeps sending requests', async () => {
    await writeFile(join(dir, 'big.bin'), Buffer.alloc(24 * MiB)); // more than the kernel buffers hold
    const { server, port, events } = await start({ idleTimeoutMs: 500 });
    const s = await connectFrom('127.0.0.2', port);
    s.pause(); // reads nothing, ever
    s.write(D('big.bin'));
    // Bytes coming in must not count as progress: a whole PDU every 100 ms, never read answers to.
    const timer = setInterval(() => s.write(D('big.bin')), 100);
    fx.track(() => clearInterval(timer));
    const t0 = performance.now();
    await waitFor(() => events.some((e) => e.type === 'aborted'), 10_000, 'the transfer to be aborted');
    const ms = performance.now() - t0;
    clearInterval(timer);
    await waitFor(() => server.connections === 0, 2000, 'the connection to be closed');
    const aborted = events.find((e) => e.type === 'aborted');
    expect(aborted?.type === 'aborted' && aborted.reason).toMatch(/read nothing for 0.5 s/);
    expect(ms).toBeGreaterThanOrEqual(400);
    expect(await downloadTime(port)).toBeGreaterThan(0);
    figures.push(`never-reading downloader, idle timeout 0.5 s: cut after ${ms.toFixed(0)} ms while sending a request every 100 ms`);
  });
});

/**
 * Swaps, in its own process and as fast as it can: `race` between a regular file of the
 * folder, a symlink to the outside file and a symlink to a file inside; and `victim` (the
 * target of the inside link `race2`) between a regular file and a symlink to the outside.
 */
const SWAPPER = `
const fs = require('node:fs');
const [dir, outside] = process.argv.slice(1);
process.chdir(dir);
const put = (make, name) => { try { make('tmp-' + name); fs.renameSync('tmp-' + name, name); } catch { try { fs.unlinkSync('tmp-' + name); } catch {} } };
const file = (t) => fs.linkSync('inside.bin', t);
const out = (t) => fs.symlinkSync(outside, t);
const inside = (t) => fs.symlinkSync('inside.bin', t);
const until = Date.now() + 30000;
for (let i = 0; Date.now() < until; i++) {
  put([file, out, inside, out][i % 4], 'race');
  put(i % 2 ? out : file, 'victim');
}`;

describe('symlink race', () => {
  it('never sends the outside file or its digest while links are swapped in and out during thousands of requests', async () => {
    const outsideDir = await fx.tempDir();
    const size = 4096;
    const inside = Buffer.alloc(size, 'I');
    const outside = Buffer.alloc(size, 'O');
    await writeFile(join(outsideDir, 'secret'), outside);
    await writeFile(join(dir, 'inside.bin'), inside);
    await link(join(dir, 'inside.bin'), join(dir, 'race'));
    await link(join(dir, 'inside.bin'), join(dir, 'victim'));
    await symlink('victim', join(dir, 'race2'));
    const swapper = spawn(process.execPath, ['-e', SWAPPER, dir, join(outsideDir, 'secret')], { stdio: 'ignore' });
    fx.track(() => swapper.kill('SIGKILL'));
    const { port } = await start();
    const tally = { served: 0, refused: 0, leaked: 0 };
    const insideDigest = sha256Text(inside);
    const outsideDigest = sha256Text(outside);
    const until = performance.now() + 4000;
    const worker = async () => {
      const c = await RawClient.connect(port);
      fx.track(() => c.close());
      while (tally.served + tally.refused < 6000 && performance.now() < until) {
        await c.write(Buffer.concat([D('race'), D('race2')]));
        for (let i = 0; i < 2; i++) {
          const a = await c.readAnswer();
          if (a.type === 'E') {
            expect(a.code).toBe(3);
            tally.refused++;
            continue;
          }
          tally.served++;
          if (a.sha256 === outsideDigest || a.content.includes('O')) tally.leaked++;
          else expect([a.sha256, a.content.equals(inside)]).toEqual([insideDigest, true]);
        }
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    swapper.kill('SIGKILL');
    expect(tally.leaked).toBe(0);
    // The race really ran: some requests met the inside file, some a link leading out.
    expect(tally.served).toBeGreaterThan(0);
    expect(tally.refused).toBeGreaterThan(0);
    expect(tally.served + tally.refused).toBeGreaterThanOrEqual(1000);
    figures.push(`symlink race: ${tally.served + tally.refused} D requests, ${tally.served} served the inside file, ${tally.refused} refused E 3, ${tally.leaked} leaked`);
  });
});
