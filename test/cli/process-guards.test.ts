/**
 * The edges of a command's process, through the real bins: a reader that goes away (EPIPE)
 * never crashes a command, and a second Ctrl-C quits at once.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { Fixtures, PEER_BIN, waitFor } from '../helpers/peer-fixtures.js';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

it('peer serve whose stdout reader has gone keeps serving and still deregisters on Ctrl-C', async () => {
  const index = (await fx.indexBin(['--quiet'])).addr;
  const dir = await fx.tempDir();
  await writeFile(join(dir, 'a.txt'), 'a');
  const serve = await fx.serveBin(dir, index);
  serve.child.proc.stdout!.destroy(); // like `peer serve | head -1` once head has exited
  const list = async () => JSON.parse((await fx.run(PEER_BIN, ['list', '--json', '--index', index])).stdout).servers as unknown[];
  expect(await list()).toHaveLength(1);
  serve.child.kill('SIGINT');
  expect(await serve.child.waitExit()).toEqual({ code: 0, signal: null });
  expect(serve.child.stderr).toBe(''); // no EPIPE stack trace
  expect(await list()).toEqual([]);
});

it('a one-shot command whose reader has gone ends without a stack trace', async () => {
  const index = (await fx.indexBin(['--quiet'])).addr;
  const child = fx.spawn(PEER_BIN, ['list', '--index', index]);
  child.proc.stdout!.destroy();
  const exit = await child.waitExit();
  expect(exit.signal).toBeNull();
  expect(child.stderr).not.toMatch(/EPIPE|at .*\.js/);
});

it('a second Ctrl-C quits at once, and the first one says so', async () => {
  const index = await fx.indexBin(['--quiet']);
  const dir = await fx.tempDir();
  await writeFile(join(dir, 'a.txt'), 'a');
  const serve = await fx.serveBin(dir, index.addr);
  // The index stops answering: the deregistration on stop would wait (up to its bound).
  index.child.proc.kill('SIGSTOP');
  fx.track(() => index.child.proc.kill('SIGCONT'));
  serve.child.kill('SIGINT');
  await serve.child.waitForLine(/SIGINT: deregistering 1 file\(s\) and closing \(press Ctrl-C again to quit at once\)/);
  serve.child.kill('SIGINT');
  const exit = await serve.child.waitExit(5000);
  expect(exit.code).toBe(130);
  await waitFor(() => serve.child.stderr.includes('peer: SIGINT again: quitting now'), 1000, 'the quit line');
});

it('peer serve stops within about 3 s of Ctrl-C when the index does not answer, with 300 files', async () => {
  const silent = await fx.indexBin(['--quiet']);
  silent.child.proc.kill('SIGSTOP');
  fx.track(() => silent.child.proc.kill('SIGCONT'));
  const dir = await fx.tempDir();
  for (let i = 0; i < 300; i++) await writeFile(join(dir, `f${i}.txt`), String(i));
  const serve = fx.spawn(PEER_BIN, ['serve', '--dir', dir, '--port', '0', '--host', '127.0.0.1', '--index', silent.addr]);
  await serve.waitForLine(/serving .* on tcp/);
  serve.kill('SIGTERM');
  // Bounded by the stop itself (2.5 s of deregistering at most), not by the index's retries;
  // the test's limit is generous: it catches a stop that waits for 8 tries of 300 requests.
  const exit = await serve.waitExit(6000);
  expect(exit).toEqual({ code: 0, signal: null });
  expect(serve.stdout).toMatch(/SIGTERM: stopping \(press Ctrl-C again to quit at once\)/);
});
