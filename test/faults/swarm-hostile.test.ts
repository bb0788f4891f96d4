/**
 * A swarm download among hostile holders: each kind of FakeHolder misbehaviour next to honest
 * holders for the same name and digest. The download must end with the original bytes (or,
 * with no honest holder left, reject with one line), never put anything unverified under the
 * final name, and name the liar in its report. Also: repair of a liar's bytes left by an
 * earlier run, a holder that restarts on the same port, and never downloading from oneself.
 *
 * Holders whose misbehaviour only shows after a first request (or only in the final digest)
 * are put next to a "gate": an honest FakeHolder that refuses until the test opens it on the
 * download's own event, so that the misbehaving holder surely gets its turn first.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ContentServer } from '../../src/peer/content-server.js';
import { download, type DownloadEvent, type DownloadOptions, type DownloadResult } from '../../src/peer/downloader.js';
import { FileLibrary } from '../../src/peer/file-library.js';
import type { IndexClient } from '../../src/peer/index-client.js';
import type { PeerdexError } from '../../src/protocol/errors.js';
import { FakeHolder, type Misbehaviour } from '../helpers/fake-holders.js';
import { binaryContent, delay, Fixtures, MiB, sha256Text } from '../helpers/peer-fixtures.js';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

const NAME = 'hostile.bin';
/** 13 pieces of 256 KiB, the last one short. */
const SIZE = 3 * MiB + 777;
const PIECE = 256 * 1024;
const PIECES = 13;
const content = binaryContent(SIZE, 23);
const digest = sha256Text(content);
const FAST = { stallTimeoutMs: 400, waitMs: 2000, connections: 8 };

let index: IndexClient;
let seedDir: string;
let dlDir: string;

beforeEach(async () => {
  index = fx.indexClient((await fx.index()).port);
  seedDir = await fx.tempDir();
  dlDir = await fx.tempDir();
  await writeFile(join(seedDir, NAME), content);
});

const key = (port: number) => `127.0.0.1:${port}`;
const register = (port: number) => index.register({ port, addr: '', filename: NAME, sha256: digest });

/** A real ContentServer sharing the original, registered. */
async function honestServer(): Promise<number> {
  const { port } = await fx.contentServer(seedDir);
  await register(port);
  return port;
}

/** A FakeHolder of the original content, registered unless told otherwise. */
async function fake(behaviour: Misbehaviour, registered = true): Promise<FakeHolder> {
  const holder = await FakeHolder.start({ name: NAME, content, behaviour });
  fx.track(() => holder.close());
  if (registered) await register(holder.port);
  return holder;
}

/** An honest holder that refuses every request until `open()`. */
async function gate(): Promise<{ holder: FakeHolder; open: () => void }> {
  const holder = await fake({ kind: 'refuse' });
  return { holder, open: () => holder.setBehaviour({ kind: 'honest' }) };
}

interface Attempt {
  promise: Promise<DownloadResult>;
  events: DownloadEvent[];
  /** Whether the final name existed at any event or progress report before the end. */
  finalSeenEarly: () => boolean;
}

/** Starts a download of NAME into dlDir with short timeouts, recording events. */
function start(options: Partial<DownloadOptions> = {}, onEvent?: (e: DownloadEvent) => void): Attempt {
  const events: DownloadEvent[] = [];
  let early = false;
  const peek = () => (early ||= existsSync(join(dlDir, NAME)));
  const promise = download({
    index,
    filename: NAME,
    dir: dlDir,
    ...FAST,
    ...options,
    onProgress: peek,
    onEvent: (e) => {
      peek();
      events.push(e);
      onEvent?.(e);
    },
  });
  return { promise, events, finalSeenEarly: () => early };
}

/** The download ends with the original bytes under the final name, and nothing else left. */
async function expectVerified(attempt: Attempt): Promise<DownloadResult> {
  const result = await attempt.promise;
  expect(result).toMatchObject({ size: SIZE, sha256: digest, path: join(dlDir, NAME) });
  expect((await readFile(result.path)).equals(content)).toBe(true);
  expect(await readdir(dlDir)).toEqual([NAME]);
  expect(attempt.finalSeenEarly()).toBe(false);
  return result;
}

/** The download rejects with one line matching `pattern`, with nothing under the final name. */
async function expectRejected(attempt: Attempt, code: string, pattern: RegExp): Promise<PeerdexError> {
  const err = (await attempt.promise.then(
    () => expect.fail('the download should have failed'),
    (e: unknown) => e,
  )) as PeerdexError;
  expect(err).toMatchObject({ code, message: expect.stringMatching(pattern) });
  expect(err.message).not.toContain('\n');
  expect(existsSync(join(dlDir, NAME))).toBe(false);
  expect(attempt.finalSeenEarly()).toBe(false);
  return err;
}

/**
 * Downloads, expecting the original bytes, and `liar` banned for `reason` both in the report
 * and in a holder-banned event.
 */
async function expectLiarBanned(liar: FakeHolder, reason: RegExp, options: Partial<DownloadOptions> = {}, onEvent?: (e: DownloadEvent) => void) {
  const attempt = start(options, onEvent);
  const result = await expectVerified(attempt);
  const holder = key(liar.port);
  expect(result.report).toContainEqual(expect.objectContaining({ holder, state: 'banned', reason: expect.stringMatching(reason) }));
  expect(attempt.events).toContainEqual(expect.objectContaining({ type: 'holder-banned', holder, reason: expect.stringMatching(reason) }));
  return { result, events: attempt.events };
}

/** Opens `g` on the first event about `holder` of type `type`. */
const openOn = (g: { open: () => void }, type: DownloadEvent['type'], holder: FakeHolder) => (e: DownloadEvent) => {
  if (e.type === type && 'holder' in e && e.holder === key(holder.port)) g.open();
};

describe('liars caught by the header', () => {
  it.each([1, 2])('bans a holder announcing another size next to %i honest holder(s)', async (honest) => {
    await honestServer();
    if (honest === 2) await fake({ kind: 'honest' });
    const liar = await fake({ kind: 'header-size', size: SIZE + 4096 });
    await expectLiarBanned(liar, /announces 3150601 bytes|header of 3150601/);
  });

  it('bans a holder claiming 1 TB beside an honest one', async () => {
    await honestServer();
    const liar = await fake({ kind: 'header-size', size: 1e12 });
    await expectLiarBanned(liar, /announces 1000000000000 bytes, more than/, { maxSize: 1024 * MiB });
  });

  it('rejects a lone 1 TB claim in one line, writing nothing', async () => {
    await fake({ kind: 'header-size', size: 1e12 });
    await expectRejected(start({ maxSize: 1024 * MiB }), 'ERR_FILE', /^cannot download "hostile\.bin": .*1000000000000 bytes, more than .*; nothing was written/);
    expect(await readdir(dlDir)).toEqual([]);
  });

  it('bans a holder announcing other content than the index', async () => {
    await honestServer();
    const liar = await fake({ kind: 'other-digest' });
    await expectLiarBanned(liar, /SHA-256/);
  });

  it('bans a holder sending frames with wrong ids', async () => {
    await honestServer();
    const liar = await fake({ kind: 'wrong-frame-id' });
    await expectLiarBanned(liar, /broke the protocol: expected packet 1, got 2/);
    expect(liar.requests.length).toBeGreaterThan(1); // the probe, then a ranged request
  });
});

describe('holders caught by their first transfers', () => {
  it('bans a holder sending a frame past the announced size and drops what it sent', async () => {
    const g = await gate();
    const liar = await fake({ kind: 'past-size' });
    const { result, events } = await expectLiarBanned(liar, /broke the protocol/, {}, openOn(g, 'holder-banned', liar));
    // Its first run of pieces was whole and written; the ban threw it away again.
    const ban = events.find((e) => e.type === 'holder-banned');
    expect(ban?.type === 'holder-banned' && ban.dropped).toBeGreaterThan(0);
    expect(result.report).toContainEqual({ holder: key(g.holder.port), state: 'ok', bytes: SIZE });
  });

  it.each<[string, Misbehaviour, RegExp]>([
    ['a trickle', { kind: 'trickle', bytesPerSecond: 200 }, /stalled: \d+ bytes in 0\.4 s/],
    ['a stall after the header', { kind: 'stall-after-header' }, /stalled: 0 bytes|sent nothing for 0\.4 s/],
    ['a close mid-frame', { kind: 'close-after', bytes: 100 * 1024 }, /closed the connection/],
  ])('rests %s without banning it, and finishes from an honest holder', async (_what, behaviour, reason) => {
    const g = await gate();
    const slow = await fake(behaviour);
    const attempt = start({}, openOn(g, 'holder-failed', slow));
    const result = await expectVerified(attempt);
    expect(attempt.events).toContainEqual({ type: 'holder-failed', holder: key(slow.port), reason: expect.stringMatching(reason) });
    expect(attempt.events.some((e) => e.type === 'holder-banned' && e.holder === key(slow.port))).toBe(false);
    expect(result.report.find((r) => r.holder === key(slow.port))?.state).not.toBe('banned');
  });
});

describe('liars caught by the final digest', () => {
  /**
   * The download with `liar` delivering first (the gate opens, and `then` runs, once it has):
   * it must find the liar by second opinions, ban it and repair. Returns the pieces repaired.
   */
  async function expectRepaired(liar: FakeHolder, g: { open: () => void }, then?: () => void): Promise<number> {
    const { events } = await expectLiarBanned(liar, /sent pieces that do not match the SHA-256/, {}, (e) => {
      if (e.type !== 'holder' || e.holder !== key(liar.port)) return;
      then?.();
      g.open();
    });
    const repaired = events.find((e) => e.type === 'repaired');
    expect(repaired).toMatchObject({ liar: key(liar.port) });
    return repaired?.type === 'repaired' ? repaired.pieces : 0;
  }

  it('finds a holder sending wrong bytes under the right header, bans it and repairs every piece', async () => {
    const g = await gate();
    const liar = await fake({ kind: 'wrong-bytes' });
    expect(await expectRepaired(liar, g)).toBe(PIECES);
  });

  it('finds a holder that turns to wrong bytes after an honest start, and repairs only its wrong pieces', async () => {
    const g = await gate();
    const liar = await fake({ kind: 'honest' });
    // Its first run is honest, and so is the first piece of its next run; then it lies.
    const repaired = await expectRepaired(liar, g, () => liar.setBehaviour({ kind: 'wrong-bytes-after', bytes: liar.bytesSent + PIECE }));
    expect(repaired).toBeGreaterThan(0);
    expect(repaired).toBeLessThanOrEqual(PIECES - 2);
  });
});

describe('no honest holder, then an honest one on the next run', () => {
  /** Takes the liar away and offers an honest holder instead. */
  async function replaceLiar(liar: FakeHolder): Promise<void> {
    await liar.close();
    await index.deregister({ port: liar.port, addr: '', filename: NAME, sha256: digest });
    await honestServer();
  }

  it('rejects when the only holder lies about the size, and the next run is not misled by it', async () => {
    const liar = await fake({ kind: 'header-size', size: SIZE + 4096 });
    await expectRejected(start({ waitMs: 500 }), 'ERR_INTEGRITY', /1 holder tried, none could send it \(last: .*header of 3150601\)$/);
    expect(await readdir(dlDir)).toEqual([]); // no part file, and no meta with the lie in it
    await replaceLiar(liar);
    await expectVerified(start());
  });

  it('rejects when the only holder lies, and the next run repairs every piece it kept', async () => {
    const liar = await fake({ kind: 'wrong-bytes' });
    await expectRejected(start(), 'ERR_INTEGRITY', /does not match its SHA-256 .*; no other holder could check 13 piece\(s\) \(3146505 bytes kept/);
    await replaceLiar(liar);
    const attempt = start();
    const result = await expectVerified(attempt);
    expect(result.resumedFrom).toBe(SIZE);
    expect(attempt.events).toContainEqual({ type: 'repaired', liar: 'an earlier run', pieces: PIECES });
  });

  it('repairs the bytes a liar wrote before the download was interrupted', async () => {
    const liar = await fake({ kind: 'wrong-bytes' });
    const stop = new AbortController();
    const first = start({ signal: stop.signal }, (e) => e.type === 'holder' && stop.abort());
    await expectRejected(first, 'ERR_CANCELLED', /stopped \(\d+ bytes kept/);
    await replaceLiar(liar);
    const attempt = start();
    const result = await expectVerified(attempt);
    expect(result.resumedFrom).toBeGreaterThan(0);
    const repaired = attempt.events.find((e) => e.type === 'repaired');
    expect(repaired).toEqual({ type: 'repaired', liar: 'an earlier run', pieces: result.resumedFrom / PIECE });
  });
});

describe('churn and self', () => {
  it('finishes while a holder closes mid-download and comes back on the same port', async () => {
    await honestServer();
    const flaky = await fx.contentServer(seedDir);
    await register(flaky.port);
    const restart = async () => {
      await flaky.server.close();
      await delay(500);
      const again = await ContentServer.listen({ library: new FileLibrary(seedDir), port: flaky.port, host: '127.0.0.1' });
      fx.track(() => again.close());
    };
    let back: Promise<void> | undefined;
    // A slow download (about 1 MiB/s a connection) so that the restart happens while it runs.
    const limiter = { take: (n: number) => delay((n / MiB) * 1000) };
    const attempt = start({ limiter, stallTimeoutMs: 1000, waitMs: 3000 }, (e) => {
      if (e.type === 'holder') back ??= restart();
    });
    const result = await expectVerified(attempt);
    await back;
    expect(back).toBeDefined();
    expect(result.report.find((r) => r.holder === key(flaky.port))?.state).not.toBe('banned');
  });

  it('never asks its own content server, even when the index lists it', async () => {
    await honestServer();
    const self = await fake({ kind: 'wrong-bytes' });
    const result = await expectVerified(start({ selfPort: self.port }));
    expect(self.requests).toEqual([]);
    expect(result.report.map((r) => r.holder)).not.toContain(key(self.port));
  });
});
