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
  // An index that never answers: start-up and the deregistrations would wait for it.
  const silent = await fx.indexBin(['--quiet']);
  silent.child.proc.kill('SIGSTOP');
  fx.track(() => silent.child.proc.kill('SIGCONT'));
  const dir = await fx.tempDir();
  await writeFile(join(dir, 'a.txt'), 'a');
  const serve = fx.spawn(PEER_BIN, ['serve', '--dir', dir, '--port', '0', '--host', '127.0.0.1', '--index', silent.addr]);
  await serve.waitForLine(/serving .* on tcp/);
  serve.kill('SIGINT');
  await serve.waitForLine(/SIGINT: stopping \(press Ctrl-C again to quit at once\)/);
  serve.kill('SIGINT');
  const exit = await serve.waitExit(5000);
  expect(exit.code).toBe(130);
  await waitFor(() => serve.stderr.includes('SIGINT again: quitting now'), 1000, 'the quit line');
});
