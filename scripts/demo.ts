/**
 * `npm run demo`: the whole peerdex story on loopback, through the real command-line tools.
 *
 *   an index; peer A shares shared-files/; peer B lists, searches and downloads from A and
 *   re-registers; A leaves; peer C downloads the same file from B. Every digest is checked.
 *
 * Exits 0 when every step worked, 1 (with the failing step) otherwise; always cleans up.
 */
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256File } from '../src/peer/digest.js';
import { BIN, run, startService, type Service } from './lib/processes.js';

const SHARED = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared-files');
const services: Service[] = [];
let stepNo = 0;

const say = (text: string) => process.stdout.write(`${text}\n`);
const step = (text: string) => say(`\n[${++stepNo}] ${text}`);
const detail = (text: string) => say(`    ${text}`);


async function peer(args: string[]): Promise<any> {
  const r = await run(BIN.peer, [...args, '--json']);
  if (r.code !== 0) throw new Error(`peer ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout);
}

async function startPeer(dir: string, indexArg: string): Promise<Service> {
  const s = await startService(BIN.peer, ['serve', '--dir', dir, '--port', '0', '--host', '127.0.0.1', '--index', indexArg, '--rescan', '1'], /registered for tcp port (\d+)/);
  services.push(s);
  return s;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'peerdex-demo-'));
  try {
    step('Start the index server (UDP, any free port on 127.0.0.1)');
    const index = await startService(BIN.index, ['--port', '0', '--host', '127.0.0.1', '--quiet'], /listening on udp [^ ]*:(\d+)/);
    services.push(index);
    const indexArg = `127.0.0.1:${index.port}`;
    detail(`index listening on ${indexArg}`);

    step('Peer A shares shared-files/ (content server + registrations)');
    const a = await startPeer(SHARED, indexArg);
    const names = (await readdir(SHARED)).sort();
    await waitFor(async () => (await peer(['list', '--index', indexArg])).servers.length === 1, 'A to be listed');
    detail(`A serves ${names.length} files on 127.0.0.1:${a.port}: ${names.join(', ')}`);

    step('Peer B lists the index and searches for bytes.bin');
    const dirB = join(work, 'peer-b');
    const dirC = join(work, 'peer-c');
    const b = await startPeer(await makeDir(dirB), indexArg);
    const listing = await peer(['list', '--index', indexArg]);
    for (const s of listing.servers) detail(`${s.addr}:${s.port} holds ${s.names.join(', ')}`);
    const found = await peer(['search', 'bytes.bin', '--index', indexArg]);
    detail(`bytes.bin is at ${found.addr}:${found.port}, sha256 ${found.sha256}`);
    if (found.port !== a.port) throw new Error(`expected A (${a.port}) to hold bytes.bin, index said ${found.port}`);

    step('Peer B downloads bytes.bin and hello.txt from A, verifies them and re-registers them');
    for (const name of ['bytes.bin', 'hello.txt']) {
      const got = await peer(['download', name, '--dir', dirB, '--port', String(b.port), '--index', indexArg]);
      await expectSame(join(SHARED, name), got.path);
      detail(`${name}: ${got.size} bytes from ${got.holders.at(-1)}, sha256 verified, registered at B's port ${b.port}`);
    }

    step('Peer A leaves (Ctrl-C: it deregisters everything)');
    const code = await a.stop('SIGINT');
    if (code !== 0) throw new Error(`peer A exited with ${code}`);
    const holder = await peer(['search', 'bytes.bin', '--index', indexArg]);
    detail(`bytes.bin is now held by ${holder.addr}:${holder.port} (peer B)`);
    if (holder.port !== b.port) throw new Error(`expected B (${b.port}) to hold bytes.bin after A left, index said ${holder.port}`);

    step('Peer C downloads bytes.bin, now from B');
    const c = await startPeer(await makeDir(dirC), indexArg);
    const got = await peer(['download', 'bytes.bin', '--dir', dirC, '--port', String(c.port), '--index', indexArg]);
    await expectSame(join(SHARED, 'bytes.bin'), got.path);
    detail(`bytes.bin: ${got.size} bytes from ${got.holders.at(-1)}, identical to A's original`);

    step('A missing name is a clear error');
    const missing = await run(BIN.peer, ['download', 'no-such-file.txt', '--dir', dirC, '--index', indexArg]);
    if (missing.code === 0) throw new Error('downloading a missing name succeeded');
    detail(`exit ${missing.code}: ${missing.stderr.trim()}`);

    const final = await peer(['list', '--index', indexArg]);
    step(`Done: ${final.servers.length} content servers hold ${final.servers.reduce((n: number, s: { names: string[] }) => n + s.names.length, 0)} registrations; every digest matched`);
  } finally {
    await Promise.all(services.map((s) => s.stop('SIGTERM')));
    await rm(work, { recursive: true, force: true });
  }
}

async function makeDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return dir;
}

async function expectSame(original: string, copy: string): Promise<void> {
  const [x, y] = await Promise.all([sha256File(original), sha256File(copy)]);
  if (x !== y) throw new Error(`${copy} differs from ${original}`);
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

say('peerdex demo: one index and three peers on 127.0.0.1');
main().then(
  () => say('\ndemo passed'),
  (err: unknown) => {
    process.stderr.write(`\ndemo failed at step ${stepNo}: ${(err as Error).message}\n`);
    process.exitCode = 1;
  },
);
