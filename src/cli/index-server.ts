#!/usr/bin/env node
/** `index-server`: runs the UDP index in the foreground, one log line per event. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { IndexServer, type IndexServerEvent } from '../index/udp-server.js';
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
  .option('max-registrations', { type: 'number', default: 2_000_000, describe: 'registrations in all before E 6' })
  .option('max-per-source', { type: 'number', default: 100_000, describe: 'registrations from one address before E 6' })
  .option('max-list-unproven', { type: 'number', default: 64, describe: 'most O PDUs sent to an address with no registration (0 = no limit)' })
  .option('redis', { type: 'string', describe: 'share the registry with other indexes through this Redis (redis://HOST:PORT[/DB])' })
  .option('redis-prefix', { type: 'string', default: 'peerdex:', describe: 'key prefix: indexes with the same prefix share one registry' })
  .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'log nothing but startup and errors' })
  .check((a) => {
    if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) throw new Error(`--port must be 0..65535, got ${a.port}`);
    if (!(a.ttl > 0)) throw new Error(`--ttl must be a positive number of seconds, got ${a.ttl}`);
    for (const flag of ['max-registrations', 'max-per-source', 'max-list-unproven'] as const) {
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

/** One line per registration change or refused request; searches and lists are not logged. */
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
    case 'refused':
      return `refused ${escapeForTerminal(e.request)} from ${e.from}: E ${e.code} ${escapeForTerminal(e.reason)}`;
    default:
      return undefined;
  }
}

ignoreClosedOutput();
/** With --redis: the replicated store, loaded before the socket answers anything. */
async function openSharedStore(url: string) {
  const { ReplicatedStore } = await import('../index/replicated-store.js');
  const store = await ReplicatedStore.open({
    url,
    prefix: argv['redis-prefix'],
    ttlMs: argv.ttl * 1000,
    limits: { maxRegistrations: argv['max-registrations'], maxPerSource: argv['max-per-source'] },
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
    limits: { maxRegistrations: argv['max-registrations'], maxPerSource: argv['max-per-source'] },
    maxListPdusUnproven: argv['max-list-unproven'] === 0 ? Infinity : argv['max-list-unproven'],
  });
  const { address, port } = server.address();
  // Handle signals before announcing the port: a script may stop us as soon as it reads it.
  const stopped = untilStopSignal();
  process.stdout.write(`${timestamp()} index listening on udp ${formatHostPort(address, port)} (ttl ${argv.ttl} s)\n`);
  server.on('error', (err) => process.stderr.write(`${timestamp()} socket error: ${err.message}\n`));
  if (!argv.quiet) {
    server.on('event', (e) => {
      const line = describe(e);
      if (line) process.stdout.write(`${timestamp()} ${line}\n`);
    });
  }
  const signal = await stopped;
  await server.close();
  await store?.close();
  const s = server.stats;
  process.stdout.write(`${timestamp()} ${signal}: closed (${s.received} datagrams, ${s.replies} replies, ${s.refused} refused, ${s.dropped} dropped)\n`);
});
