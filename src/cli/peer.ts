#!/usr/bin/env node
/** `peer`: share a folder, and find, download and register content through an index. */
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DEFAULT_CONTENT_PORT, withIndexOptions } from './common.js';
import { downloadCommand } from './peer-download.js';
import { deregisterCommand, listCommand, registerCommand, searchCommand } from './peer-index-commands.js';
import { LOG_FORMATS, type LogFormat } from './log-format.js';
import { serveCommand } from './peer-serve.js';
import { runMain } from './output.js';
import { ignoreClosedOutput } from './process-guards.js';

const json = { type: 'boolean', default: false, describe: 'print one JSON document for scripts' } as const;
const contentPort = { type: 'number', default: DEFAULT_CONTENT_PORT, describe: 'TCP port of the content server that holds the file' } as const;

/** The options of a running peer: `peer serve`, and `peer download --seed`. */
function servingOptions<T>(y: Argv<T>) {
  return y
    .option('dir', { type: 'string', default: 'shared-files', describe: 'folder to share (and to download into)' })
    .option('port', { type: 'number', default: DEFAULT_CONTENT_PORT, describe: 'TCP port of this peer\'s content server (0 = any free port)' })
    .option('host', { type: 'string', default: '0.0.0.0', describe: 'address to bind' })
    .option('refresh', { type: 'number', default: 30, describe: 'seconds between re-registrations (keep under the index TTL)' })
    .option('rescan', { type: 'number', default: 5, describe: 'seconds between looks for added or removed files' })
    .option('settle', { type: 'number', default: 2, describe: 'seconds a file must stay unchanged before it is shared (a copy in progress is not)' })
    .option('idle-timeout', { type: 'number', default: 30, describe: 'seconds before an idle connection is closed' })
    .option('max-connections', { type: 'number', default: 256, describe: 'downloads served at once' })
    .option('max-connections-per-source', { type: 'number', default: 16, describe: 'connections one address may hold at once' })
    .option('include-hidden', { type: 'boolean', default: false, describe: 'also share files whose names start with a dot' })
    .option('max-upload-rate', { type: 'string', describe: 'cap on bytes per second sent to all downloaders together, like 500k or 10M (k = 1024; default: no cap)' });
}

ignoreClosedOutput();
runMain('peer', async () => {
  await withIndexOptions(yargs(hideBin(process.argv)))
    .scriptName('peer')
    .usage('$0 <command> [options]\n\nShare a folder, and find, download and register content through a peerdex index.')
    .command(
      'serve',
      'serve a folder over TCP and keep every file in it registered',
      (y) =>
        servingOptions(y)
          .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'log only warnings' })
          .option('http', { type: 'string', describe: 'serve a page, a JSON API and /metrics on [HOST:]PORT (HOST defaults to 127.0.0.1; off by default)' })
          .option('http-token', { type: 'string', default: process.env['PEERDEX_HTTP_TOKEN'], defaultDescription: '$PEERDEX_HTTP_TOKEN', describe: 'bearer token that POST and DELETE need (required when --http binds a non-loopback address)' })
          .option('jobs', { type: 'number', default: 3, describe: 'downloads started through the API that run at once (more wait)' })
          .option('log-format', { choices: LOG_FORMATS, default: 'human' as LogFormat, describe: 'human lines, or json: one JSON object per line (time, level, msg, fields)' }),
      (a) => serveCommand(a),
    )
    .command(
      'register <file>',
      'register a local file under a content port',
      (y) => y.positional('file', { type: 'string', demandOption: true }).option('port', contentPort).option('json', json),
      (a) => registerCommand(a),
    )
    .command(
      'deregister <name>',
      'remove a registration made from this address',
      (y) => y.positional('name', { type: 'string', demandOption: true }).option('port', contentPort).option('json', json),
      (a) => deregisterCommand(a),
    )
    .command(
      'search <name>',
      'find holders: an exact name asks the index for its next holder; a glob (quote it) or --contains searches the listing',
      (y) =>
        y
          .positional('name', { type: 'string', demandOption: true, describe: "a name, a glob like '*.txt', or text with --contains" })
          .option('contains', { type: 'boolean', default: false, describe: 'find names containing this text (any case)' })
          .option('json', json),
      (a) => searchCommand(a),
    )
    .command(
      'list',
      'list every content server and its names',
      (y) => y.option('long', { alias: 'l', type: 'boolean', default: false, describe: 'one name per line' }).option('json', json),
      (a) => listCommand(a),
    )
    .command(
      'download [names..]',
      'download files from every holder at once, verify, keep and share them',
      (y) =>
        servingOptions(y)
          .positional('names', { type: 'string', array: true, default: [] as string[], describe: 'names to download' })
          .option('match', { type: 'string', describe: "also download every name in the index's listing that matches this glob" })
          .option('jobs', { type: 'number', default: 3, describe: 'files downloaded at once' })
          .option('connections', { type: 'number', default: 8, describe: 'holders fetched from at once, per file' })
          .option('stall-timeout', { type: 'number', default: 10, describe: 'seconds a holder may send (almost) nothing before its pieces go to another' })
          .option('wait', { type: 'number', default: 30, describe: 'seconds to keep looking for holders once every known one has failed' })
          .option('max-size', { type: 'string', describe: 'largest file accepted, like 700M or 4G (default: the free space of the target disk)' })
          .option('max-download-rate', { type: 'string', describe: 'cap on bytes per second received by all downloads together, like 500k or 10M' })
          .option('seed', { type: 'boolean', default: false, describe: 'after downloading, serve and register the files on --port until Ctrl-C' })
          .option('register', { type: 'boolean', default: true, describe: 'register each file if a content server on this host serves it on --port (--no-register to skip)' })
          .option('overwrite', { type: 'boolean', default: false, describe: 'replace an existing file with different content' })
          .option('progress', { type: 'boolean', describe: 'force progress lines on or off (default: on a terminal)' })
          .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'say what each holder did as it happens' })
          .option('json', json),
      (a) => downloadCommand(a),
    )
    .demandCommand(1, 'name a command: serve, register, deregister, search, list or download')
    .strict()
    .help()
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`peer: ${msg} (see peer --help)\n`);
      process.exit(1);
    })
    .parseAsync();
});
