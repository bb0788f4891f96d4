/**
 * `npm run demo:cluster`: three index servers sharing one registry through Redis, and peers
 * that list all three in --index, on loopback, through the real command-line tools.
 *
 *   Redis; indexes 1, 2, 3 with --redis; peer A shares six 8 MiB files; peer C downloads them
 *   one after another (rate-capped, so it takes a while) and shares each one it got; while it
 *   does, index 1 is killed (SIGKILL) and later restarted on the same port. Searches run all
 *   the time. The narration shows that no download or search failed, and that the restarted
 *   index answers its first request with every registration, those made while it was down too.
 *
 * Exits 0 when every step worked, 1 otherwise (also without redis-server: it says how to
 * install it); always cleans up.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IndexClient } from '../src/peer/index-client.js';
import { expectSame, makeDir, patterned } from './lib/demo-files.js';
import { BIN, run, startService, type Service } from './lib/processes.js';
import { INSTALL_REDIS, redisInstalled, startRedis, type LocalRedis } from './lib/redis-server.js';

const FILES = 6;
const FILE_SIZE = 8 * 1024 * 1024;
const services: Service[] = [];
let redis: LocalRedis | undefined;
let stepNo = 0;
const t0 = Date.now();

const say = (text: string) => process.stdout.write(`${text}\n`);
const step = (text: string) => say(`\n[${++stepNo}] ${text}`);
const detail = (text: string) => say(`    ${text}`);
/** A narration line stamped with the seconds since the start. */
const event = (text: string) => say(`    ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s  ${text}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function peer(args: string[]): Promise<any> {
  const r = await run(BIN.peer, [...args, '--json']);
  if (r.code !== 0) throw new Error(`peer ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout);
}

async function startIndex(port: number, prefix: string): Promise<Service> {
  const args = ['--port', String(port), '--host', '127.0.0.1', '--quiet', '--ttl', '12', '--redis', redis!.url, '--redis-prefix', prefix];
  const s = await startService(BIN.index, args, /listening on udp [^ ]*:(\d+)/);
  services.push(s);
  return s;
}

async function startPeer(dir: string, indexList: string): Promise<Service> {
  const args = ['serve', '--dir', dir, '--port', '0', '--host', '127.0.0.1', '--index', indexList, '--rescan', '1', '--refresh', '3'];
  const s = await startService(BIN.peer, args, /registered for tcp port (\d+)/);
  services.push(s);
  return s;
}

/** Every registration a listing holds, as sorted `port name` lines. */
const registrations = (listing: { servers: { port: number; names: string[] }[] }) => listing.servers.flatMap((s) => s.names.map((n) => `${s.port} ${n}`)).sort();

/** Runs `peer search` over the whole list again and again until stopped; counts the outcomes. */
function searchLoop(indexList: string): { stop: () => Promise<{ ok: number; failed: string[] }> } {
  let running = true;
  const failed: string[] = [];
  let ok = 0;
  const done = (async () => {
    for (let i = 0; running; i++) {
      const r = await run(BIN.peer, ['search', `part-${(i % FILES) + 1}.bin`, '--index', indexList]);
      if (r.code === 0) ok++;
      else failed.push(r.stderr.trim());
    }
  })();
  return { stop: async () => ((running = false), await done, { ok, failed }) };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'peerdex-demo-cluster-'));
  try {
    step('Start redis-server (loopback, any free port, no persistence)');
    redis = await startRedis();
    detail(`redis listening on ${redis.url}`);

    step('Start three index servers sharing one registry through it (--redis, one --redis-prefix)');
    const prefix = `demo-${process.pid}:`;
    const indexes = [await startIndex(0, prefix), await startIndex(0, prefix), await startIndex(0, prefix)];
    const addr = (i: number) => `127.0.0.1:${indexes[i].port}`;
    const all = indexes.map((_, i) => addr(i)).join(',');
    indexes.forEach((_, i) => detail(`index ${i + 1} on ${addr(i)}`));
    detail(`every peer is given --index ${all}`);

    step(`Peer A shares ${FILES} files of 8 MiB; it registers through index 1, and indexes 2 and 3 know them too`);
    const dirA = await makeDir(join(work, 'peer-a'));
    for (let i = 1; i <= FILES; i++) await writeFile(join(dirA, `part-${i}.bin`), patterned(FILE_SIZE, i));
    const a = await startPeer(dirA, all);
    for (let i = 0; i < 3; i++) {
      const seen = await waitFor(async () => registrations(await peer(['list', '--index', addr(i)])).length === FILES, `index ${i + 1} to list A's files`);
      detail(`index ${i + 1} lists ${FILES} files at 127.0.0.1:${a.port} (after ${seen} ms)`);
    }

    step('Peer C downloads the six files one by one (capped at 8 MiB/s) and shares each; searches run meanwhile');
    const dirC = await makeDir(join(work, 'peer-c'));
    const c = await startPeer(dirC, all);
    const searches = searchLoop(all);
    let killedAt = 0;
    let restarted: Promise<void> | undefined;
    for (let i = 1; i <= FILES; i++) {
      const got = await peer(['download', `part-${i}.bin`, '--dir', dirC, '--port', String(c.port), '--index', all, '--max-download-rate', '8M']);
      const d = got.downloads?.[0] ?? got;
      await expectSame(join(dirA, `part-${i}.bin`), d.path);
      event(`part-${i}.bin downloaded from ${d.holders.join(', ')}, sha256 verified, ${d.registered ? 'registered for C' : 'NOT registered'}`);
      if (!d.registered) throw new Error(`part-${i}.bin was not registered for C`);
      if (i === 1) {
        const old = indexes[0];
        old.child.kill('SIGKILL');
        await old.stop();
        killedAt = Date.now();
        event(`index 1 (${addr(0)}) killed with SIGKILL; downloads and searches go on`);
      }
      if (i === 4) restarted = restartIndex1();
    }
    await restarted;

    async function restartIndex1(): Promise<void> {
      event(`restarting index 1 on ${addr(0)} after ${((Date.now() - killedAt) / 1000).toFixed(1)} s down`);
      const started = Date.now();
      indexes[0] = await startIndex(indexes[0].port, prefix);
      const ready = Date.now() - started;
      // Its very first request, an O straight from this process (no CLI start-up in the timing).
      const asked = performance.now();
      const first = registrations({ servers: await new IndexClient({ host: '127.0.0.1', port: indexes[0].port }).list() });
      const answered = (performance.now() - asked).toFixed(1);
      const other = registrations(await peer(['list', '--index', addr(1)]));
      const fromDownTime = first.filter((r) => r.startsWith(`${c.port} `)).length;
      event(
        `index 1 is back (${ready} ms to start, load from Redis and listen); its first answer, a listing in ${answered} ms, has ${first.length} registrations; index 2 has ${other.length}`,
      );
      if (first.join('|') !== other.join('|')) throw new Error(`index 1 lists ${first.length} registrations after its restart, index 2 ${other.length}`);
      event(`including C's ${fromDownTime} registration(s) made while index 1 was down`);
    }

    const { ok, failed } = await searches.stop();
    step('Nothing stopped');
    detail(`${FILES} downloads, every digest verified; ${ok} searches answered, ${failed.length} failed`);
    if (failed.length > 0) throw new Error(`${failed.length} search(es) failed: ${failed[0]}`);
    const problems = [...a.lines, ...c.lines].filter((l) => /index|error/i.test(l) && !/registered for tcp|serving /.test(l));
    detail(problems.length === 0 ? 'peer A and peer C logged no index error: their refreshes went through the other indexes' : `peer logs: ${problems.join(' | ')}`);

    step('Peer A leaves (Ctrl-C): every index forgets it at once');
    if ((await a.stop('SIGINT')) !== 0) throw new Error('peer A did not stop cleanly');
    for (let i = 0; i < 3; i++) {
      await waitFor(async () => !registrations(await peer(['list', '--index', addr(i)])).some((r) => r.startsWith(`${a.port} `)), `index ${i + 1} to drop A`);
      const left = registrations(await peer(['list', '--index', addr(i)]));
      detail(`index ${i + 1}: ${left.length} registrations left, all of them C's`);
    }
    step('Done: three indexes, one registry; one index killed and restarted without a failed request');
  } finally {
    await Promise.all(services.map((s) => s.stop('SIGTERM')));
    await redis?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/** Polls `check` until true; returns the ms it took. */
async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<number> {
  const from = Date.now();
  while (!(await check())) {
    if (Date.now() - from > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
  return Date.now() - from;
}

if (!redisInstalled()) {
  process.stderr.write(`demo:cluster needs a Redis server. ${INSTALL_REDIS}, then run npm run demo:cluster again.\n`);
  process.exit(1);
}
say('peerdex cluster demo: Redis, three index servers and two peers on 127.0.0.1');
main().then(
  () => say('\ndemo passed'),
  (err: unknown) => {
    process.stderr.write(`\ndemo failed at step ${stepNo}: ${(err as Error).message}\n`);
    process.exitCode = 1;
  },
);
