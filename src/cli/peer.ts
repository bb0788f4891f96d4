#!/usr/bin/env node
/** `peer`: share a folder, and find, download and register content through an index. */
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DEFAULT_CONTENT_PORT, checkPort, countOption, durationOption, portOption, withIndexOptions } from './common.js';
import { commonSetup } from './command-line.js';
import { downloadCommand } from './peer-download.js';
import { deregisterCommand, listCommand, registerCommand, searchCommand } from './peer-index-commands.js';
import { DEFAULT_LOG_FORMAT, LOG_FORMATS } from './log-format.js';
import { serveCommand } from './peer-serve.js';
import { runMain } from './output.js';
import { ignoreClosedOutput } from './process-guards.js';

const COMMANDS = ['serve', 'register', 'deregister', 'search', 'list', 'download', 'completion'];

/** What a command with a missing argument shows. */
const EXAMPLES = {
  register: { usage: 'name the file to register: peer register FILE --port PORT', example: 'peer register shared-files/hello.txt --port 9100' },
  deregister: { usage: 'name the file to deregister: peer deregister NAME --port PORT', example: 'peer deregister hello.txt --port 9100' },
  search: { usage: 'name what to search for: peer search NAME', example: "peer search hello.txt, or peer search '*.txt'" },
  download: { usage: 'name a file to download: peer download NAME', example: 'peer download hello.txt' },
};

const hex = { type: 'boolean', default: false, describe: 'show SHA-256 digests in hex, as sha256sum prints them (--json always has both)' } as const;
const contentPort = {
  default: DEFAULT_CONTENT_PORT,
  requiresArg: true,
  coerce: portOption('port'),
  describe: "TCP port of this host's content server that holds the file (the --port of its peer serve)",
} as const;
const seconds = (name: string, allowZero = false) => durationOption(name, 's', { allowZero });

/** The options of a running peer: `peer serve`, and `peer download --seed`. */
function servingOptions<T>(y: Argv<T>) {
  return y
    .option('dir', { type: 'string', default: 'shared-files', requiresArg: true, describe: 'folder to share (and to download into)' })
    .option('host', { type: 'string', default: '0.0.0.0', requiresArg: true, describe: 'address the content server listens on' })
    .option('refresh', {
      default: '30s',
      requiresArg: true,
      coerce: seconds('refresh'),
      describe: "how often to renew the registrations, like 30s or 1m (a plain number is seconds); at most a third of the index's --ttl",
    })
    .option('rescan', {
      default: '5s',
      requiresArg: true,
      coerce: seconds('rescan'),
      describe: 'how often to look for added, changed or removed files (a plain number is seconds)',
    })
    .option('settle', {
      default: '2s',
      requiresArg: true,
      coerce: seconds('settle', true),
      describe: 'how long a file must stay unchanged before it is shared, so a copy in progress is not (0 = at once)',
    })
    .option('idle-timeout', {
      default: '30s',
      requiresArg: true,
      coerce: seconds('idle-timeout'),
      describe: 'close a connection that has been idle this long (a plain number is seconds)',
    })
    .option('max-connections', {
      default: 256,
      requiresArg: true,
      coerce: countOption('max-connections', 1),
      describe: 'downloaders served at once; at the limit the longest idle connection is closed',
    })
    .option('max-connections-per-source', {
      default: 16,
      requiresArg: true,
      coerce: countOption('max-connections-per-source', 1),
      describe: 'connections one address may hold at once',
    })
    .option('include-hidden', { type: 'boolean', default: false, describe: 'also share files whose names start with a dot' })
    .option('max-upload-rate', {
      type: 'string',
      requiresArg: true,
      describe: 'cap on bytes per second sent to all downloaders together, like 500k or 10M (k = 1024; default: no cap)',
    })
    .option('hex', hex);
}

const rawArgs = hideBin(process.argv);
ignoreClosedOutput();
runMain('peer', async () => {
  const top = commonSetup(yargs(rawArgs), { prog: 'peer', envPrefix: 'PEERDEX', rawArgs, commands: COMMANDS, examples: EXAMPLES });
  await withIndexOptions(top)
    .scriptName('peer')
    .usage(
      [
        '$0 <command> [options]',
        '',
        'Share a folder, and find, download and register content through a peerdex index.',
        'Every option can also be set as PEERDEX_OPTION_NAME=value (PEERDEX_INDEX=10.0.0.1:9000) or in a --config FILE.',
      ].join('\n'),
    )
    .command(
      'serve',
      'share a folder: serve its files to other peers and keep them registered with the index',
      (y) =>
        servingOptions(y)
          .option('port', {
            default: DEFAULT_CONTENT_PORT,
            requiresArg: true,
            coerce: portOption('port', true),
            describe: "TCP port of this peer's content server (0 = any free port)",
          })
          .option('quiet', { type: 'boolean', default: false, describe: 'log only warnings and errors' })
          .option('verbose', { type: 'boolean', default: false, describe: 'also log what each holder did in downloads started from the page' })
          .option('json', { type: 'boolean', default: false, describe: 'log one JSON object per line (like --log-format json); an error is {"error": {...}} on stdout' })
          .option('http', { type: 'string', requiresArg: true, describe: 'serve a page, a JSON API and /metrics on [HOST:]PORT (HOST defaults to 127.0.0.1; off by default)' })
          .option('http-token', {
            type: 'string',
            requiresArg: true,
            defaultDescription: '$PEERDEX_HTTP_TOKEN',
            describe: 'password (bearer token) that starting and cancelling downloads through the API needs; required when --http listens beyond this machine',
          })
          .option('jobs', { default: 3, requiresArg: true, coerce: countOption('jobs', 1, 64), describe: 'downloads started through the API that run at once (more wait)' })
          .option('log-format', { choices: LOG_FORMATS, default: DEFAULT_LOG_FORMAT, describe: 'human lines, or json: one JSON object per line (time, level, msg, fields)' }),
      (a) => serveCommand(a),
    )
    .command(
      'register <file>',
      "tell the index that this host's content server (--port) has a file",
      (y) =>
        y.positional('file', { type: 'string', demandOption: true, describe: 'the file, in the folder that content server shares' }).option('port', contentPort).option('hex', hex),
      (a) => registerCommand(a),
    )
    .command(
      'deregister <name>',
      'tell the index that this host no longer offers a file (a running peer serve that still has it registers it again)',
      (y) => y.positional('name', { type: 'string', demandOption: true, describe: 'the file name as registered' }).option('port', contentPort),
      (a) => deregisterCommand(a),
    )
    .command(
      'search <name>',
      'find who has a file: an exact name gives one holder (the next in turn); a glob (quote it) or --contains lists every match with its holders',
      (y) =>
        y
          .positional('name', { type: 'string', demandOption: true, describe: "a name, a glob like '*.txt', or text with --contains" })
          .option('contains', { type: 'boolean', default: false, describe: 'find names containing this text (any case)' })
          .option('hex', hex),
      (a) => searchCommand(a),
    )
    .command(
      'list',
      'list every content server the index knows and the files it offers',
      (y) => y.option('long', { alias: 'l', type: 'boolean', default: false, describe: 'one name per line' }),
      (a) => listCommand(a),
    )
    .command(
      'download [names..]',
      'download files from every holder at once, check them against their SHA-256, keep and share them',
      (y) =>
        servingOptions(y)
          .positional('names', { type: 'string', array: true, default: [] as string[], describe: 'names to download' })
          .option('port', {
            default: DEFAULT_CONTENT_PORT,
            requiresArg: true,
            coerce: (v: unknown) => (String(v).trim() === '0' ? 0 : checkPort(v, 'port')),
            describe: "TCP port of this host's content server: the downloaded files are registered for it (with --seed: served on it; 0 = any free port)",
          })
          .option('match', { type: 'string', requiresArg: true, describe: "also download every name in the index's listing that matches this glob (quote it: '*.iso')" })
          .option('jobs', { default: 3, requiresArg: true, coerce: countOption('jobs', 1, 64), describe: 'files downloaded at once' })
          .option('connections', { default: 8, requiresArg: true, coerce: countOption('connections', 1, 64), describe: 'holders fetched from at once, per file' })
          .option('stall-timeout', {
            default: '10s',
            requiresArg: true,
            coerce: seconds('stall-timeout'),
            describe: 'how long a holder may send (almost) nothing before its pieces go to another (a plain number is seconds)',
          })
          .option('wait', {
            default: '30s',
            requiresArg: true,
            coerce: seconds('wait', true),
            describe: 'how long to keep looking for holders once every known one has failed (a plain number is seconds)',
          })
          .option('max-size', { type: 'string', requiresArg: true, describe: 'largest file accepted, like 700M or 4G (default: the free space of the target disk)' })
          .option('max-download-rate', { type: 'string', requiresArg: true, describe: 'cap on bytes per second received by all downloads together, like 500k or 10M' })
          .option('seed', { type: 'boolean', default: false, describe: 'after downloading, serve and register the files on --port until Ctrl-C' })
          .option('register', { type: 'boolean', default: true, describe: 'register each file if a content server on this host serves it on --port (--no-register to skip)' })
          .option('overwrite', { type: 'boolean', default: false, describe: 'replace an existing file with different content' })
          .option('progress', { type: 'boolean', describe: 'force progress lines on or off (default: a progress bar on a terminal, a line every few seconds otherwise)' })
          .option('quiet', { type: 'boolean', default: false, describe: 'print no progress and no result lines, only warnings and errors' })
          .option('verbose', { type: 'boolean', default: false, describe: 'say what each holder did as it happens' }),
      (a) => downloadCommand(a),
    )
    .demandCommand(1, 'name a command: serve, register, deregister, search, list or download (for example: peer list)')
    .parseAsync();
});
