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
import { parseListenAddress, redisLabel } from '../http/http-util.js';
import { eventLogger, DEFAULT_LOG_FORMAT, LOG_FORMATS, type EventLogger } from './log-format.js';
import { escapeForTerminal, parseOrExit, runMain } from './output.js';
import { commonSetup } from './command-line.js';
import { countOption, durationOption, portOption } from './common.js';
import { PeerdexError } from '../protocol/errors.js';
import { ignoreClosedOutput, untilStopSignal } from './process-guards.js';

const rawArgs = hideBin(process.argv);
/** A duration option in seconds (`90`, `2m`, `500ms`). */
const seconds = (name: string) => (value: unknown) => durationOption(name, 's')(value) / 1000;
const atLeastZero = (name: string) => countOption(name, 0);

const argv = parseOrExit('index-server', () =>
  commonSetup(yargs(rawArgs), { prog: 'index-server', envPrefix: 'PEERDEX_INDEX_SERVER', rawArgs })
    .scriptName('index-server')
    .usage(
      [
        '$0 [--port 9000] [--host 0.0.0.0] [--ttl 90s]',
        '',
        'Runs the peerdex index: maps content names to the content servers that hold them.',
        'Every option can also be set as PEERDEX_INDEX_SERVER_OPTION_NAME=value (PEERDEX_INDEX_SERVER_TTL=2m) or in a --config FILE.',
      ].join('\n'),
    )
    .option('port', { default: 9000, requiresArg: true, coerce: portOption('port', true), describe: 'UDP port to listen on (0 = any free port)' })
    .option('host', { type: 'string', default: '0.0.0.0', requiresArg: true, describe: "address to listen on ('::' for IPv6 and IPv4)" })
    .option('ttl', {
      default: 90,
      requiresArg: true,
      coerce: seconds('ttl'),
      describe: 'how long a registration lasts unless its peer renews it, like 90s or 2m (a plain number is seconds)',
    })
    .option('trust-claimed-addresses', {
      type: 'boolean',
      default: false,
      describe: "accept registrations for an address other than the sender's (unsafe: anyone could point others at any host)",
    })
    .option('max-registrations', {
      default: D.maxRegistrations,
      requiresArg: true,
      coerce: atLeastZero('max-registrations'),
      describe: 'most registrations the index holds; more are refused as busy',
    })
    .option('max-per-source', {
      default: D.maxPerSource,
      requiresArg: true,
      coerce: atLeastZero('max-per-source'),
      describe: 'most registrations from one address; more are refused as busy',
    })
    .option('max-per-prefix', {
      default: D.maxPerPrefix,
      requiresArg: true,
      coerce: atLeastZero('max-per-prefix'),
      describe: 'most registrations from one network (/24 for IPv4, /64 for IPv6); more are refused as busy',
    })
    .option('max-list-unproven', {
      default: D.maxListPdusUnproven,
      requiresArg: true,
      coerce: atLeastZero('max-list-unproven'),
      describe: 'longest listing (in 100-byte packets) sent to an address that has registered nothing, so a forged request cannot flood someone (0 = no limit)',
    })
    .option('max-reply-rate', {
      default: D.maxReplyRate,
      requiresArg: true,
      coerce: atLeastZero('max-reply-rate'),
      describe: 'bytes per second of listings sent to one address (0 = no limit)',
    })
    .option('register-rate', {
      default: D.registerRate,
      requiresArg: true,
      coerce: atLeastZero('register-rate'),
      describe: 'new registrations per second from one address, bursts of 10 s allowed (0 = no limit)',
    })
    .option('list-rate', {
      default: D.listRate,
      requiresArg: true,
      coerce: atLeastZero('list-rate'),
      describe: 'listing requests per second from one address, bursts of 2 s allowed (0 = no limit)',
    })
    .option('max-listings', {
      default: D.maxListings,
      requiresArg: true,
      coerce: atLeastZero('max-listings'),
      describe: 'long listings sent at once (paced); one more is refused as busy',
    })
    .option('summary-interval', {
      default: 10,
      requiresArg: true,
      coerce: seconds('summary-interval'),
      describe: 'refused and dropped requests are summed up per address over this long in the log (a plain number is seconds)',
    })
    .option('redis', { type: 'string', requiresArg: true, describe: 'share the registry with other indexes through this Redis (redis://HOST:PORT[/DB])' })
    .option('redis-prefix', { type: 'string', default: 'peerdex:', requiresArg: true, describe: 'key prefix: indexes with the same prefix share one registry' })
    .option('quiet', { type: 'boolean', default: false, describe: 'log nothing but start-up, warnings and errors' })
    .option('verbose', { type: 'boolean', default: false, describe: 'also log every search and listing' })
    .option('json', { type: 'boolean', default: false, describe: 'log one JSON object per line (like --log-format json); an error is {"error": {...}} on stdout' })
    .option('http', { type: 'string', requiresArg: true, describe: 'serve a status page, a JSON API and /metrics on [HOST:]PORT (HOST defaults to 127.0.0.1; off by default)' })
    .option('log-format', { choices: LOG_FORMATS, default: DEFAULT_LOG_FORMAT, describe: 'human lines, or json: one JSON object per line (time, level, msg, fields)' })
    .middleware((a) => {
      if (a.json) a['log-format'] = a.logFormat = 'json';
    })
    .check((a) => {
      if (a.redis !== undefined && !/^rediss?:\/\/[^/]+(\/\d+)?$/.test(a.redis))
        throw new PeerdexError('ERR_USAGE', `--redis must look like redis://HOST:PORT[/DB], got "${a.redis}"`);
      if (a.http !== undefined) parseListenAddress(a.http);
      return true;
    })
    .parseSync(),
);

const holderText = (h: { filename: string; addr: string; port: number }) => `"${escapeForTerminal(h.filename)}" at ${formatHostPort(h.addr, h.port)}`;

/** The fields of an event for JSON lines. */
function eventFields(e: IndexServerEvent): Record<string, unknown> {
  const holder = 'holder' in e ? { name: e.holder.filename, addr: e.holder.addr, port: e.holder.port } : {};
  const from = 'from' in e ? { from: e.from } : {};
  const extra =
    e.type === 'left'
      ? { registrations: e.holders.length }
      : e.type === 'refused'
        ? { request: e.request, code: e.code, reason: e.reason }
        : e.type === 'limited'
          ? { request: e.request, reason: e.reason }
          : e.type === 'dropped'
            ? { bytes: e.bytes }
            : {};
  return { event: e.type, ...holder, ...from, ...extra };
}

/** With --verbose: searches and listings too. */
function describeQuery(e: IndexServerEvent): string | undefined {
  if (e.type === 'searched') return `search for "${escapeForTerminal(e.filename)}" from ${e.from}: ${e.found ? 'found' : 'nobody has it'}`;
  if (e.type === 'listed') return `listing sent to ${e.from} (${e.pdus} packet(s))`;
  return undefined;
}

/** One line per registration change; refusals go through the summary; searches and lists only with --verbose. */
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
      return {
        from: e.from,
        kind: `${escapeForTerminal(e.request)} E ${e.code}`,
        line: `refused ${escapeForTerminal(e.request)} from ${e.from}: E ${e.code} ${escapeForTerminal(e.reason)}`,
      };
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
function logRefusals(server: IndexServer, seconds: number, logger: EventLogger): () => void {
  const summary = new RefusalSummary();
  server.on('event', (e) => {
    const r = refusal(e);
    if (r && summary.note(r.from, r.kind)) logger.log('warn', r.line, eventFields(e));
  });
  const flush = () => {
    for (const l of summary.flush())
      logger.log('warn', summaryText(l, seconds), { event: 'refusal-summary', from: l.from ?? 'others', total: l.total, kinds: Object.fromEntries(l.kinds), seconds });
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
async function openSharedStore(url: string, logger: EventLogger) {
  const { ReplicatedStore } = await import('../index/replicated-store.js');
  const store = await ReplicatedStore.open({
    url,
    prefix: argv['redis-prefix'],
    ttlMs: argv.ttl * 1000,
    limits: limitsFromFlags(),
    // Redis going away is a warning (something to alert on); it coming back is news.
    onStatus: ({ up, message }) => logger.log(up ? 'info' : 'warn', message, { event: 'redis-status', up, redis: redisLabel(url) }),
  });
  logger.log('info', `loaded ${store.size} registration(s) from ${redisLabel(url)} (prefix ${argv['redis-prefix']})`, {
    event: 'loaded',
    registrations: store.size,
    redis: redisLabel(url),
    prefix: argv['redis-prefix'],
  });
  return store;
}

/** With --http: the status page, API and metrics, told which cluster this index is part of. */
async function openHttp(server: IndexServer, text: string, logger: EventLogger) {
  const { IndexHttpServer } = await import('../http/index-http.js');
  const { host, port } = parseListenAddress(text);
  const cluster = argv.redis === undefined ? undefined : { redis: redisLabel(argv.redis), prefix: argv['redis-prefix'] };
  const web = await IndexHttpServer.listen({ server, host, port, cluster });
  const bound = web.address().address;
  // A page bound to every address must not be logged as if it were loopback only.
  const where = bound === '0.0.0.0' || bound === '::' ? `, listening on every address (${bound}), port ${web.address().port}` : '';
  logger.log('info', `status page and API on ${web.url}${where} (metrics at ${web.url}metrics)`, {
    event: 'http-listening',
    url: web.url,
    address: bound,
    port: web.address().port,
  });
  return web;
}

runMain('index-server', async () => {
  const logger = eventLogger(argv['log-format']);
  const store = argv.redis === undefined ? undefined : await openSharedStore(argv.redis, logger);
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
  logger.log('info', `index listening on udp ${formatHostPort(address, port)} (ttl ${argv.ttl} s)`, { event: 'listening', addr: address, port, ttl: argv.ttl });
  server.on('error', (err) => logger.log('error', `socket error: ${err.message}`, { event: 'socket-error' }));
  let web: Awaited<ReturnType<typeof openHttp>> | undefined;
  try {
    web = argv.http === undefined ? undefined : await openHttp(server, argv.http, logger);
  } catch (err) {
    await server.close();
    await store?.close();
    throw err;
  }
  let flushRefusals = () => {};
  if (!argv.quiet) {
    server.on('event', (e) => {
      const line = describe(e) ?? (argv.verbose ? describeQuery(e) : undefined);
      if (line) logger.log('info', line, eventFields(e));
    });
    flushRefusals = logRefusals(server, argv['summary-interval'], logger);
  }
  const signal = await stopped;
  await web?.close();
  await server.close();
  flushRefusals();
  await store?.close();
  const s = server.stats;
  logger.log('info', `${signal}: closed (${s.received} datagrams, ${s.replies} replies, ${s.refused} refused, ${s.dropped} dropped)`, { event: 'closed', signal, ...s });
});
