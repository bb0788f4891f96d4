/**
 * UDP load generator for the index benchmark. Runs in its own process (so its CPU is not the
 * server's) and prints one JSON line with its result. Modes:
 *
 *   fill        registers names 0..N-1 (R port;;name;sha256), a window of requests in flight,
 *               resending any that are lost, until every one is acknowledged
 *   throughput  keeps `window` S requests for random names in flight over `sockets` sockets
 *               and counts the replies per second
 *   latency     sends S requests at a fixed `rate` and reports reply latency percentiles
 *
 * Every reply names the file it answers (the index's S reply carries it, the bare dgram
 * server echoes the request), which is how a reply is matched to its request. A request with
 * no reply after `lossMs` counts as lost and is replaced. While measuring it prints the lines
 * "measure-start" and "measure-end", so the caller can sample the server's CPU time.
 *
 *   node load-generator.js --port P --mode throughput --names 100000 [--sockets 4]
 *        [--window 256] [--warmup 1] [--duration 5] [--rate 20000] [--servers 1000]
 */
import { performance } from 'node:perf_hooks';
import { encodeHolder, encodeSearch } from '../../src/protocol/index-messages.js';
import { LoadSender } from './load-sender.js';
import { BENCH_SHA256, benchName, parseArgs, percentile } from './measure.js';

interface Options {
  host: string;
  port: number;
  mode: 'fill' | 'throughput' | 'latency';
  names: number;
  /** For fill: registrations are spread over this many content ports (server = addr:port). */
  servers: number;
  sockets: number;
  window: number;
  warmup: number;
  duration: number;
  rate: number;
  lossMs: number;
}

const args = parseArgs(process.argv.slice(2));
const o: Options = {
  host: String(args.host ?? '127.0.0.1'),
  port: Number(args.port),
  mode: String(args.mode ?? 'throughput') as Options['mode'],
  names: Number(args.names ?? 100_000),
  servers: Number(args.servers ?? 1000),
  sockets: Number(args.sockets ?? 4),
  window: Number(args.window ?? 256),
  warmup: Number(args.warmup ?? 1),
  duration: Number(args.duration ?? 5),
  rate: Number(args.rate ?? 20_000),
  lossMs: Number(args['loss-ms'] ?? 250),
};

/** xorshift32: a fast, seeded stream of random name indexes. */
let seed = 0x9e3779b9;
function randomName(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % o.names;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Pre-encoded S requests, one per name (10 MB for 100,000 names; sent many times each). */
function searchPdus(): Buffer[] {
  return Array.from({ length: o.names }, (_, i) => encodeSearch(benchName(i)));
}

async function fill(sender: LoadSender): Promise<object> {
  const started = performance.now();
  const retry: number[] = [];
  let next = 0;
  let done = 0;
  let firstError: string | undefined;
  const pduFor = (i: number) => encodeHolder('R', { port: 1024 + (i % Math.min(o.servers, 64_000)), addr: '', filename: benchName(i), sha256: BENCH_SHA256 });
  const perSocket = Math.max(1, Math.floor(o.window / o.sockets));
  const top = (s: number) => {
    while (sender.inFlight[s].size < perSocket) {
      const i = retry.pop() ?? (next < o.names ? next++ : -1);
      if (i < 0) return;
      sender.send(s, i, pduFor(i));
    }
  };
  const sweeper = setInterval(() => sender.sweep(), 50);
  await new Promise<void>((resolve) => {
    sender.onReply = (s) => {
      if (++done === o.names) resolve();
      else top(s);
    };
    sender.onLost = (s, name) => {
      retry.push(name);
      top(s);
    };
    sender.onError = (reply) => {
      // E 6 (a limit) or anything else: stop and report it
      firstError ??= reply.toString('utf8', 0, Math.max(1, reply.indexOf(0))).trim();
      resolve();
    };
    for (let s = 0; s < o.sockets; s++) top(s);
  });
  clearInterval(sweeper);
  const seconds = (performance.now() - started) / 1000;
  return { mode: 'fill', registered: done, errors: sender.errors, firstError, lost: sender.lost, seconds, perSecond: done / seconds };
}

async function throughput(sender: LoadSender): Promise<object> {
  const pdus = searchPdus();
  const perSocket = Math.max(1, Math.floor(o.window / o.sockets));
  const sendOne = (s: number) => {
    for (;;) {
      const name = randomName();
      if (sender.send(s, name, pdus[name])) return;
    }
  };
  const latencies: number[] = [];
  let measuring = false;
  sender.onReply = (s, _name, sentAt, now) => {
    if (measuring && (sender.answered & 63) === 0) latencies.push(now - sentAt); // a sample
    sendOne(s);
  };
  sender.onLost = (s) => sendOne(s);
  const sweeper = setInterval(() => sender.sweep(), 50);
  for (let s = 0; s < o.sockets; s++) for (let k = 0; k < perSocket; k++) sendOne(s);
  await sleep(o.warmup * 1000);
  const a0 = sender.answered;
  const lost0 = sender.lost;
  const t0 = performance.now();
  process.stdout.write('measure-start\n');
  measuring = true;
  await sleep(o.duration * 1000);
  const a1 = sender.answered;
  const t1 = performance.now();
  process.stdout.write('measure-end\n');
  measuring = false;
  clearInterval(sweeper);
  sender.onReply = () => {};
  sender.onLost = () => {};
  latencies.sort((a, b) => a - b);
  return {
    mode: 'throughput',
    window: perSocket * o.sockets,
    sockets: o.sockets,
    answered: a1 - a0,
    seconds: (t1 - t0) / 1000,
    perSecond: ((a1 - a0) * 1000) / (t1 - t0),
    lost: sender.lost - lost0,
    errors: sender.errors,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

async function latency(sender: LoadSender): Promise<object> {
  const pdus = searchPdus();
  const samples = new Float64Array(Math.ceil(o.rate * (o.duration + 1)));
  let count = 0;
  let measuring = false;
  sender.onReply = (_s, _name, sentAt, now) => {
    if (measuring && count < samples.length) samples[count++] = now - sentAt;
  };
  let sent = 0;
  let socket = 0;
  const start = performance.now();
  // Sends what is due every millisecond: Node's timers cannot pace single datagrams at 50 us.
  const pacer = setInterval(() => {
    const due = Math.floor(((performance.now() - start) * o.rate) / 1000);
    while (sent < due) {
      const s = socket++ % o.sockets;
      let name = randomName();
      while (!sender.send(s, name, pdus[name])) name = randomName();
      sent++;
    }
  }, 1);
  const sweeper = setInterval(() => sender.sweep(), 50);
  await sleep(o.warmup * 1000);
  const sent0 = sent;
  const answered0 = sender.answered;
  const lost0 = sender.lost;
  process.stdout.write('measure-start\n');
  measuring = true;
  const t0 = performance.now();
  await sleep(o.duration * 1000);
  const t1 = performance.now();
  const sent1 = sent;
  clearInterval(pacer);
  await sleep(o.lossMs + 60); // let the last replies arrive (or be counted lost)
  measuring = false;
  process.stdout.write('measure-end\n');
  clearInterval(sweeper);
  const sorted = samples.subarray(0, count).sort();
  return {
    mode: 'latency',
    rate: o.rate,
    sentPerSecond: ((sent1 - sent0) * 1000) / (t1 - t0),
    answered: sender.answered - answered0,
    lost: sender.lost - lost0,
    errors: sender.errors,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    p999Ms: percentile(sorted, 99.9),
    maxMs: sorted[sorted.length - 1] ?? NaN,
  };
}

async function main(): Promise<void> {
  if (!(o.port > 0)) throw new Error('--port is required');
  const sender = new LoadSender(o.host, o.port, o.lossMs);
  await sender.open(o.sockets);
  const result = o.mode === 'fill' ? await fill(sender) : o.mode === 'latency' ? await latency(sender) : await throughput(sender);
  sender.close();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`load-generator: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
