/**
 * `npm run demo`: the whole peerdex story on loopback, through the real command-line tools.
 *
 *   an index; peer A shares shared-files/ plus a generated 16 MiB file; peer B lists, searches
 *   and downloads from A, and shares what it got; peer C downloads the big file from A and B
 *   at once (a swarm download); A leaves; C gets another file from B. Every digest is checked.
 *
 * Exits 0 when every step worked, 1 (with the failing step) otherwise; always cleans up.
 *
 * `npm run demo -- --http`: the index and peer B also serve their pages (index-server --http,
 * peer serve --http, on free loopback ports); the demo prints both URLs and, in a terminal,
 * keeps them up after the story until Ctrl-C.
 */
import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expectSame, makeDir, patterned } from './lib/demo-files.js';
import { BIN, run, startService, type Service } from './lib/processes.js';

const SHARED = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared-files');
const services: Service[] = [];
const HTTP = process.argv.includes('--http');
const httpArgs = HTTP ? ['--http', '127.0.0.1:0'] : [];
let stepNo = 0;

const say = (text: string) => process.stdout.write(`${text}\n`);
const step = (text: string) => say(`\n[${++stepNo}] ${text}`);
const detail = (text: string) => say(`    ${text}`);

async function peer(args: string[]): Promise<any> {
  const r = await run(BIN.peer, [...args, '--json']);
  if (r.code !== 0) throw new Error(`peer ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout);
}

async function startPeer(dir: string, indexArg: string, extra: string[] = []): Promise<Service> {
  const s = await startService(
    BIN.peer,
    ['serve', '--dir', dir, '--port', '0', '--host', '127.0.0.1', '--index', indexArg, '--rescan', '1', ...extra],
    /registered for tcp port (\d+)/,
  );
  services.push(s);
  return s;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'peerdex-demo-'));
  try {
    step('Start the index server (UDP, any free port on 127.0.0.1)');
    const index = await startService(BIN.index, ['--port', '0', '--host', '127.0.0.1', '--quiet', ...httpArgs], /listening on udp [^ ]*:(\d+)/);
    services.push(index);
    const indexArg = `127.0.0.1:${index.port}`;
    detail(`index listening on ${indexArg}`);
    const indexPage = HTTP ? await pageUrl(index) : undefined;
    if (indexPage) detail(`index status page: ${indexPage}`);

    step('Peer A shares shared-files/ and a 16 MiB swarm.bin (content server + registrations)');
    const dirA = await makeDir(join(work, 'peer-a'));
    for (const name of await readdir(SHARED)) await copyFile(join(SHARED, name), join(dirA, name));
    await writeFile(join(dirA, 'swarm.bin'), patterned(16 * 1024 * 1024));
    const a = await startPeer(dirA, indexArg);
    const names = (await readdir(dirA)).sort();
    await waitFor(async () => (await peer(['list', '--index', indexArg])).servers.length === 1, 'A to be listed');
    detail(`A serves ${names.length} files on 127.0.0.1:${a.port}: ${names.join(', ')}`);

    step('Peer B lists the index and searches for bytes.bin');
    const dirB = join(work, 'peer-b');
    const dirC = join(work, 'peer-c');
    const b = await startPeer(await makeDir(dirB), indexArg, httpArgs);
    const peerPage = HTTP ? await pageUrl(b) : undefined;
    if (peerPage) detail(`peer B's page: ${peerPage}`);
    const listing = await peer(['list', '--index', indexArg]);
    for (const s of listing.servers) detail(`${s.addr}:${s.port} holds ${s.names.join(', ')}`);
    const found = await peer(['search', 'bytes.bin', '--index', indexArg]);
    detail(`bytes.bin is at ${found.addr}:${found.port}, sha256 ${found.sha256}`);
    if (found.port !== a.port) throw new Error(`expected A (${a.port}) to hold bytes.bin, index said ${found.port}`);

    step('Peer B downloads three files from A, verifies them, and shares them (B serves its folder)');
    const gotB = await peer(['download', 'bytes.bin', 'hello.txt', 'swarm.bin', '--dir', dirB, '--port', String(b.port), '--index', indexArg]);
    for (const got of gotB.downloads) {
      await expectSame(join(dirA, got.filename), got.path);
      if (!got.registered) throw new Error(`${got.filename} was not registered although B serves it`);
      detail(`${got.filename}: ${got.size} bytes from ${got.holders.join(', ')}, sha256 verified, registered at B's port ${b.port}`);
    }

    step('Peer C downloads swarm.bin from A and B at once (pieces from every holder, one SHA-256)');
    const c = await startPeer(await makeDir(dirC), indexArg);
    const swarm = await peer(['download', 'swarm.bin', '--dir', dirC, '--port', String(c.port), '--index', indexArg]);
    await expectSame(join(dirA, 'swarm.bin'), swarm.path);
    const senders = swarm.report.filter((h: { bytes: number }) => h.bytes > 0);
    for (const h of senders) detail(`${h.holder} sent ${(h.bytes / 1048576).toFixed(1)} MiB`);
    if (senders.length < 2) throw new Error(`expected pieces from two holders, got them from ${senders.length}`);
    detail(`swarm.bin: ${swarm.size} bytes from ${senders.length} holders at once, sha256 verified`);

    step('Peer A leaves (Ctrl-C: it deregisters everything)');
    const code = await a.stop('SIGINT');
    if (code !== 0) throw new Error(`peer A exited with ${code}`);
    const holder = await peer(['search', 'bytes.bin', '--index', indexArg]);
    detail(`bytes.bin is now held by ${holder.addr}:${holder.port} (peer B)`);
    if (holder.port !== b.port) throw new Error(`expected B (${b.port}) to hold bytes.bin after A left, index said ${holder.port}`);

    step('Peer C downloads bytes.bin, now from B');
    const got = await peer(['download', 'bytes.bin', '--dir', dirC, '--port', String(c.port), '--index', indexArg]);
    await expectSame(join(SHARED, 'bytes.bin'), got.path);
    detail(`bytes.bin: ${got.size} bytes from ${got.holders.at(-1)}, identical to A's original`);

    step('A download with nothing serving its --port registers nothing (no phantom holders)');
    const dirD = await makeDir(join(work, 'peer-d'));
    const plain = await run(BIN.peer, ['download', 'hello.txt', '--dir', dirD, '--port', '1', '--index', indexArg]);
    if (plain.code !== 0) throw new Error(`plain download failed: ${plain.stderr.trim()}`);
    detail(plain.stdout.trim().split('\n').at(-1)!);

    step('A missing name is a clear error');
    const missing = await run(BIN.peer, ['download', 'no-such-file.txt', '--dir', dirC, '--index', indexArg]);
    if (missing.code === 0) throw new Error('downloading a missing name succeeded');
    detail(`exit ${missing.code}: ${missing.stderr.trim()}`);

    const final = await peer(['list', '--index', indexArg]);
    step(
      `Done: ${final.servers.length} content servers hold ${final.servers.reduce((n: number, s: { names: string[] }) => n + s.names.length, 0)} registrations; every digest matched`,
    );
    if (indexPage && peerPage) await showPages(indexPage, peerPage);
  } finally {
    await Promise.all(services.map((s) => s.stop('SIGTERM')));
    await rm(work, { recursive: true, force: true });
  }
}

/** The page URL a service logged (`... on http://127.0.0.1:PORT/ ...`). */
async function pageUrl(s: Service): Promise<string> {
  const find = () => s.lines.map((l) => /on (http:\/\/\S+\/)/.exec(l)?.[1]).find((u) => u !== undefined);
  await waitFor(() => Promise.resolve(find() !== undefined), 'the page URL');
  return find()!;
}

/** Prints both pages and, in a terminal, keeps them up until Ctrl-C. */
async function showPages(indexPage: string, peerPage: string): Promise<void> {
  say(`\nindex status page: ${indexPage}   (metrics: ${indexPage}metrics)`);
  say(`peer B's page:     ${peerPage}   (metrics: ${peerPage}metrics)`);
  if (!process.stdout.isTTY) return;
  say('the index and peers B and C keep running: open the pages, press Ctrl-C to stop');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
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
