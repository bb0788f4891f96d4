#!/usr/bin/env node
/**
 * `index-server`: runs the UDP index in the foreground, one log line per event. Refusals and
 * drops are summed up per source: the first of each source in an interval is shown in full,
 * the rest as one line of counts per source at the end of the interval.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { RefusalSummary, type SummaryLine } from '../index/refusal-summary.js';
import { INDEX_LIMIT_DEFAULTS as D, IndexServer, type IndexServerEvent } from '../index/udp-server.js';
import { formatHostPort } from '../protocol/fields.js';
import { escapeForTerminal, runMain, timestamp } from './output.js';
import { ignoreClosedOutput, untilStopSignal } from './process-guards.js';

const argv = yargs(hideBin(process.argv))
  .scriptName('index-server')
  .usage('$0 [--port 9000] [--host 0.0.0.0] [--ttl 90]\n\nRuns the peerdex index: maps content names to the content servers that hold them.')
  .option('port', { type: 'number', default: 9000, describe: 'UDP port to listen on (0 = any free port)' })
  .option('host', { type: 'string', default: '0.0.0.0', describe: "address to bind ('::' for dual stack)" })
  .option('ttl', { type: 'number', default: 90, describe: 'seconds a registration lives without a refreshing R' })
  .option('trust-claimed-addresses', { type: 'boolean', default: false, describe: 'accept R for an addr other than the sender (unsafe)' })
  .option('max-registrations', { type: 'number', default: D.maxRegistrations, describe: 'registrations in all before E 6' })
  .option('max-per-source', { type: 'number', default: D.maxPerSource, describe: 'registrations from one address before E 6' })
  .option('max-per-prefix', { type: 'number', default: D.maxPerPrefix, describe: 'registrations from one /24 (IPv4) or /64 (IPv6) before E 6' })
  .option('max-list-unproven', { type: 'number', default: D.maxListPdusUnproven, describe: 'most O PDUs sent to an address with no registration and no cookie (0 = no limit)' })
  .option('max-reply-rate', { type: 'number', default: D.maxReplyRate, describe: 'bytes per second of O answers to one address (0 = no limit)' })
  .option('register-rate', { type: 'number', default: D.registerRate, describe: 'new registrations per second from one address, burst 10 s (0 = no limit)' })
  .option('list-rate', { type: 'number', default: D.listRate, describe: 'O requests per second from one address, burst 2 s (0 = no limit)' })
  .option('max-listings', { type: 'number', default: D.maxListings, describe: 'long listings sent at once (paced); one more gets E 6' })
  .option('summary-interval', { type: 'number', default: 10, describe: 'seconds over which refusals and drops are summed up per source in the log' })
  .option('redis', { type: 'string', describe: 'share the registry with other indexes through this Redis (redis://HOST:PORT[/DB])' })
  .option('redis-prefix', { type: 'string', default: 'peerdex:', describe: 'key prefix: indexes with the same prefix share one registry' })
  .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'log nothing but startup and errors' })
  .check((a) => {
    if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) throw new Error(`--port must be 0..65535, got ${a.port}`);
    if (!(a.ttl > 0)) throw new Error(`--ttl must be a positive number of seconds, got ${a.ttl}`);
    if (!(a['summary-interval'] > 0)) throw new Error(`--summary-interval must be a positive number of seconds, got ${a['summary-interval']}`);
    for (const flag of ['max-registrations', 'max-per-source', 'max-per-prefix', 'max-list-unproven', 'max-reply-rate', 'register-rate', 'list-rate', 'max-listings'] as const) {
      const value = a[flag] as number;
      if (!(Number.isInteger(value) && value >= 0)) throw new Error(`--${flag} must be a whole number >= 0, got ${value}`);
    }
    if (a.redis !== undefined && !/^rediss?:\/\/[^/]+(\/\d+)?$/.test(a.redis)) throw new Error(`--redis must look like redis://HOST:PORT[/DB], got ${a.redis}`);
    return true;
  })
  .strict()
  .help()
  .fail((msg, err) => {
    process.stderr.write(`index-server: ${err?.message ?? msg} (see index-server --help)\n`);
    process.exit(1);
  })
  .parseSync();

const holderText = (h: { filename: string; addr: string; port: number }) => `"${escapeForTerminal(h.filename)}" at ${formatHostPort(h.addr, h.port)}`;

/** One line per registration change; refusals go through the summary; searches and lists are not logged. */
function describe(e: IndexServerEvent): string | undefined {
  switch (e.type) {
    case 'registered':
      return `registered ${holderText(e.holder)} (from ${e.from})`;
    case 'deregistered':
      return `deregistered ${holderText(e.holder)} (from ${e.from})`;
    case 'expired':
      return `expired ${holderText(e.holder)} (not refreshed within the TTL)`;
    case 'left':
      return `${e.from} left: dropped ${e.holders.length} registration(s)`;
    default:
      return undefined;
  }
}

/** A refusal or drop: its kind for the summary and its full line, or undefined for other events. */
function refusal(e: IndexServerEvent): { from: string; kind: string; line: string } | undefined {
  switch (e.type) {
    case 'refused':
      return { from: e.from, kind: `${escapeForTerminal(e.request)} E ${e.code}`, line: `refused ${escapeForTerminal(e.request)} from ${e.from}: E ${e.code} ${escapeForTerminal(e.reason)}` };
    case 'limited':
      return { from: e.from, kind: `${e.request} ${e.reason}`, line: `dropped ${e.request} from ${e.from}: ${e.reason}` };
    case 'dropped':
      return { from: e.from, kind: 'dropped', line: `dropped a ${e.bytes}-byte datagram from ${e.from} (not a request)` };
    default:
      return undefined;
  }
}

function summaryText(l: SummaryLine, seconds: number): string {
  const kinds = l.kinds.map(([kind, n]) => `${kind} x${n}`).join(', ');
  const who = l.from === undefined ? 'other sources' : `${l.from}`;
  return `${who}: ${l.total} more refused or dropped in the last ${seconds} s (${kinds})`;
}

/** Logs refusals and drops: each source's first of an interval in full, then counts. */
function logRefusals(server: IndexServer, seconds: number): () => void {
  const summary = new RefusalSummary();
  const write = (line: string) => process.stdout.write(`${timestamp()} ${line}\n`);
  server.on('event', (e) => {
    const r = refusal(e);
    if (r && summary.note(r.from, r.kind)) write(r.line);
  });
  const flush = () => {
    for (const l of summary.flush()) write(summaryText(l, seconds));
  };
  const timer = setInterval(flush, seconds * 1000);
  timer.unref();
  return () => {
    clearInterval(timer);
    flush();
  };
}

const limitsFromFlags = () => ({ maxRegistrations: argv['max-registrations'], maxPerSource: argv['max-per-source'], maxPerPrefix: argv['max-per-prefix'] });

ignoreClosedOutput();
/** With --redis: the replicated store, loaded before the socket answers anything. */
async function openSharedStore(url: string) {
  const { ReplicatedStore } = await import('../index/replicated-store.js');
  const store = await ReplicatedStore.open({
    url,
    prefix: argv['redis-prefix'],
    ttlMs: argv.ttl * 1000,
    limits: limitsFromFlags(),
    onStatus: ({ message }) => process.stdout.write(`${timestamp()} ${message}\n`),
  });
  process.stdout.write(`${timestamp()} loaded ${store.size} registration(s) from ${url} (prefix ${argv['redis-prefix']})\n`);
  return store;
}

runMain('index-server', async () => {
  const store = argv.redis === undefined ? undefined : await openSharedStore(argv.redis);
  const server = await IndexServer.listen({
    store,
    port: argv.port,
    host: argv.host,
    ttlSeconds: argv.ttl,
    trustClaimedAddresses: argv['trust-claimed-addresses'],
    limits: limitsFromFlags(),
    maxListPdusUnproven: argv['max-list-unproven'] === 0 ? Infinity : argv['max-list-unproven'],
    maxReplyRate: argv['max-reply-rate'],
    registerRate: argv['register-rate'],
    listRate: argv['list-rate'],
    maxListings: argv['max-listings'],
  });
  const { address, port } = server.address();
  // Handle signals before announcing the port: a script may stop us as soon as it reads it.
  const stopped = untilStopSignal(undefined, 'index-server');
  process.stdout.write(`${timestamp()} index listening on udp ${formatHostPort(address, port)} (ttl ${argv.ttl} s)\n`);
  server.on('error', (err) => process.stderr.write(`${timestamp()} socket error: ${err.message}\n`));
  let flushRefusals = () => {};
  if (!argv.quiet) {
    server.on('event', (e) => {
      const line = describe(e);
      if (line) process.stdout.write(`${timestamp()} ${line}\n`);
    });
    flushRefusals = logRefusals(server, argv['summary-interval']);
  }
  const signal = await stopped;
  await server.close();
  flushRefusals();
  await store?.close();
  const s = server.stats;
  process.stdout.write(`${timestamp()} ${signal}: closed (${s.received} datagrams, ${s.replies} replies, ${s.refused} refused, ${s.dropped} dropped)\n`);
});
