/**
 * A ContentServer with an upload limiter, over real TCP: two downloads at once share one
 * limiter, every byte sent is paid for, and together they take at least as long as the rate
 * allows. Only a lower bound on time is checked: a slow machine must never fail it.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { RateLimiter } from '../../src/peer/rate-limiter.js';
import { binaryContent, Fixtures, MiB, rawPdu, sha256Text } from '../helpers/peer-fixtures.js';

/** Counts the bytes that go through it, so the test sees that the server really used it. */
class CountingLimiter extends RateLimiter {
  taken = 0;
  override take(n: number): Promise<void> {
    this.taken += n;
    return super.take(n);
  }
}

const fx = new Fixtures();
afterEach(() => fx.cleanup());

it('paces two concurrent downloads through one shared limiter', async () => {
  const size = 2 * MiB;
  const rate = 4 * MiB;
  const burst = 256 * 1024;
  const content = binaryContent(size, 3);
  const dir = await fx.tempDir();
  await writeFile(join(dir, 'blob.bin'), content);
  const limiter = new CountingLimiter({ bytesPerSecond: rate, burstBytes: burst });
  fx.track(() => limiter.close());
  const { port } = await fx.contentServer(dir, { uploadLimiter: limiter });

  const clients = await Promise.all([fx.raw(port), fx.raw(port)]);
  const started = performance.now();
  const answers = await Promise.all(
    clients.map(async (c) => {
      await c.write(rawPdu('D', 'blob.bin'));
      return c.readAnswer();
    }),
  );
  const elapsedMs = performance.now() - started;

  for (const a of answers) {
    if (a.type !== 'C') throw new Error(`expected a C answer, got E ${a.code} ${a.description}`);
    expect(a.sha256).toBe(sha256Text(content));
    expect(a.content.equals(content)).toBe(true);
  }
  expect(limiter.taken).toBe(2 * size);
  // All but the first bucket had to wait for the rate; 20 ms of slack for timer rounding.
  expect(elapsedMs).toBeGreaterThanOrEqual(((2 * size - burst) / rate) * 1000 - 20);
});
