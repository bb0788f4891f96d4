/** `peer register | deregister | search | list`: one index request each, printed for people or as JSON. */
import { basename } from 'node:path';
import { stat } from 'node:fs/promises';
import { PeerdexError } from '../protocol/errors.js';
import { filenameProblem, formatHostPort } from '../protocol/fields.js';
import { sha256File } from '../peer/digest.js';
import { fileError } from '../peer/partial-file.js';
import { checkPort, indexClientFrom, printJson, type IndexArgs } from './common.js';
import { escapeForTerminal } from './output.js';

export async function registerCommand(args: IndexArgs & { file: string; port: number; json: boolean }): Promise<void> {
  const index = indexClientFrom(args);
  const port = checkPort(args.port, 'port');
  const name = basename(args.file);
  const problem = filenameProblem(name);
  if (problem) throw new PeerdexError('ERR_USAGE', `cannot register "${escapeForTerminal(name)}": ${problem}`);
  const st = await stat(args.file).catch((err: unknown) => {
    throw fileError(err, `cannot read ${args.file}`);
  });
  if (!st.isFile()) throw new PeerdexError('ERR_USAGE', `${args.file} is not a regular file`);
  const sha256 = await sha256File(args.file);
  await index.register({ port, addr: '', filename: name, sha256 });
  if (args.json) printJson({ registered: name, port, sha256, size: st.size, index: index.label });
  else process.stdout.write(`registered "${escapeForTerminal(name)}" (content port ${port}, sha256 ${sha256}) with index ${index.label}\n`);
}

export async function deregisterCommand(args: IndexArgs & { name: string; port: number; json: boolean }): Promise<void> {
  const index = indexClientFrom(args);
  const port = checkPort(args.port, 'port');
  const problem = filenameProblem(args.name);
  if (problem) throw new PeerdexError('ERR_USAGE', `cannot deregister "${escapeForTerminal(args.name)}": ${problem}`);
  await index.deregister({ port, addr: '', filename: args.name });
  if (args.json) printJson({ deregistered: args.name, port, index: index.label });
  else process.stdout.write(`deregistered "${escapeForTerminal(args.name)}" (content port ${port}) from index ${index.label}\n`);
}

export async function searchCommand(args: IndexArgs & { name: string; json: boolean }): Promise<void> {
  const index = indexClientFrom(args);
  const problem = filenameProblem(args.name);
  if (problem) throw new PeerdexError('ERR_USAGE', `cannot search for "${escapeForTerminal(args.name)}": ${problem}`);
  const h = await index.search(args.name);
  if (args.json) printJson({ filename: h.filename, addr: h.addr, port: h.port, sha256: h.sha256 ?? null });
  else process.stdout.write(`"${escapeForTerminal(h.filename)}" is held by ${formatHostPort(h.addr, h.port)}${h.sha256 ? ` (sha256 ${h.sha256})` : ''}\n`);
}

export async function listCommand(args: IndexArgs & { json: boolean }): Promise<void> {
  const index = indexClientFrom(args);
  const servers = await index.list();
  if (args.json) {
    printJson({ servers: servers.map((s) => ({ addr: s.addr, port: s.port, names: s.names })) });
    return;
  }
  if (servers.length === 0) {
    process.stdout.write(`index ${index.label} lists no content\n`);
    return;
  }
  const total = servers.reduce((n, s) => n + s.names.length, 0);
  process.stdout.write(`index ${index.label}: ${servers.length} content server(s), ${total} registration(s)\n`);
  const width = Math.max(...servers.map((s) => formatHostPort(s.addr, s.port).length), 'SERVER'.length);
  process.stdout.write(`${'SERVER'.padEnd(width)}  NAMES\n`);
  for (const s of servers) {
    const names = [...s.names].sort().map((n) => escapeForTerminal(n));
    process.stdout.write(`${formatHostPort(s.addr, s.port).padEnd(width)}  ${names.join(', ')}\n`);
  }
}
