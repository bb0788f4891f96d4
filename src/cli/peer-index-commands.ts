/** `peer register | deregister | search | list`: one index request each, printed for people or as JSON. */
import { basename, dirname } from 'node:path';
import { stat } from 'node:fs/promises';
import picomatch from 'picomatch';
import { PeerdexError, isPeerdexError } from '../protocol/errors.js';
import { ContentConnection } from '../peer/content-client.js';
import { digestAt } from '../peer/downloader.js';
import type { IndexClient } from '../peer/index-client.js';
import { filenameProblem, formatHostPort } from '../protocol/fields.js';
import { sha256File } from '../peer/digest.js';
import { fileError } from '../peer/file-errors.js';
import { indexClientFrom, printJson, sha256Hex, showSha256, type IndexArgs } from './common.js';
import { holdersByName, listingBlocks } from './listing-format.js';
import { escapeForTerminal } from './output.js';

/** What every one-shot command takes besides how to reach the index. */
export interface OutputArgs {
  json: boolean;
  /** Print only results and errors (register and deregister: nothing on success). */
  quiet: boolean;
  /** Also say which index answered and how long it took (on stderr). */
  verbose: boolean;
}

/** Runs one request to the index; with --verbose says on stderr how long it took. */
async function timed<T>(args: OutputArgs, index: IndexClient, what: string, request: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await request();
  } finally {
    if (args.verbose) process.stderr.write(`peer: ${what}: index ${index.label}, ${Math.round(performance.now() - started)} ms\n`);
  }
}

export async function registerCommand(args: IndexArgs & OutputArgs & { file: string; port: number; hex: boolean }): Promise<void> {
  const index = indexClientFrom(args);
  const port = args.port;
  const name = basename(args.file);
  const problem = filenameProblem(name);
  if (problem) throw new PeerdexError('ERR_USAGE', `cannot register "${escapeForTerminal(name)}": ${problem}`);
  const st = await stat(args.file).catch((err: unknown) => {
    throw fileError(err, `cannot read ${args.file}`);
  });
  if (!st.isFile()) throw new PeerdexError('ERR_USAGE', `${args.file} is not a regular file`);
  const sha256 = await sha256File(args.file);
  // A registration must never point at a port with nothing behind it.
  if ((await digestAt({ addr: '127.0.0.1', port }, name, st.size)) !== sha256) {
    throw new PeerdexError(
      'ERR_USAGE',
      `nothing on this host's port ${port} serves "${escapeForTerminal(name)}" with this content; run peer serve --dir ${dirname(args.file) || '.'} --port ${port} (it registers its files itself)`,
    );
  }
  await timed(args, index, `register "${escapeForTerminal(name)}"`, () => index.register({ port, addr: '', filename: name, sha256 }));
  if (args.json) printJson({ registered: name, port, sha256, sha256Hex: sha256Hex(sha256), size: st.size, index: index.label });
  else if (!args.quiet) process.stdout.write(`registered "${escapeForTerminal(name)}" (content port ${port}, sha256 ${showSha256(sha256, args.hex)}) with index ${index.label}\n`);
}

export async function deregisterCommand(args: IndexArgs & OutputArgs & { name: string; port: number }): Promise<void> {
  const index = indexClientFrom(args);
  const port = args.port;
  const problem = filenameProblem(args.name);
  if (problem) throw new PeerdexError('ERR_USAGE', `cannot deregister "${escapeForTerminal(args.name)}": ${problem}`);
  await timed(args, index, `deregister "${escapeForTerminal(args.name)}"`, () => index.deregister({ port, addr: '', filename: args.name }));
  const servedHere = await stillServed(port, args.name);
  if (args.json) printJson({ deregistered: args.name, port, index: index.label, stillServed: servedHere });
  else if (!args.quiet) process.stdout.write(`deregistered "${escapeForTerminal(args.name)}" (content port ${port}) from index ${index.label}\n`);
  if (servedHere) {
    process.stderr.write(
      `peer: warning: a peer on this host still serves "${escapeForTerminal(args.name)}" on port ${port}; its next refresh registers it again (remove the file from its folder, or stop that peer serve)\n`,
    );
  }
}

/**
 * Whether a content server on this host's `port` has `name` (a running `peer serve`, which
 * would register it again): asks for its first byte and hangs up.
 */
async function stillServed(port: number, name: string): Promise<boolean> {
  const conn = await ContentConnection.open('127.0.0.1', port, { idleTimeoutMs: 2000 }).catch(() => undefined);
  if (!conn) return false;
  try {
    await conn.request(name, 0, 1);
    return true;
  } catch (err) {
    return isPeerdexError(err) && err.remoteCode === 4; // an empty file: there, but no byte 0
  } finally {
    conn.close();
  }
}

const GLOB_CHARS = /[*?[\]{}]/;

export interface SearchArgs extends IndexArgs, OutputArgs {
  name: string;
  contains: boolean;
  hex: boolean;
}

/**
 * `peer search NAME` asks the index for the next holder of that exact name (S). A glob
 * (`'*.txt'`) or `--contains TEXT` is answered from the listing (O) instead, with every holder
 * of every matching name; an exact name nobody has falls back to the names containing it.
 */
export async function searchCommand(args: SearchArgs): Promise<void> {
  const index = indexClientFrom(args);
  const pattern = String(args.name);
  if (args.contains || GLOB_CHARS.test(pattern)) return searchListing(index, pattern, args);
  const problem = filenameProblem(pattern);
  if (problem) throw new PeerdexError('ERR_USAGE', `cannot search for "${escapeForTerminal(pattern)}": ${problem}`);
  let h;
  try {
    h = await timed(args, index, `search "${escapeForTerminal(pattern)}"`, () => index.search(pattern));
  } catch (err) {
    if (isPeerdexError(err) && err.code === 'ERR_NOT_FOUND') return searchListing(index, pattern, { ...args, contains: true }, err);
    throw err;
  }
  if (args.json) printJson({ filename: h.filename, addr: h.addr, port: h.port, sha256: h.sha256 ?? null, sha256Hex: h.sha256 ? sha256Hex(h.sha256) : null });
  else process.stdout.write(`"${escapeForTerminal(h.filename)}" is held by ${formatHostPort(h.addr, h.port)}${h.sha256 ? ` (sha256 ${showSha256(h.sha256, args.hex)})` : ''}\n`);
}

async function searchListing(index: IndexClient, pattern: string, args: SearchArgs, exactMiss?: PeerdexError): Promise<void> {
  const needle = pattern.toLowerCase();
  const matches = args.contains ? (name: string) => name.toLowerCase().includes(needle) : picomatch(pattern, { dot: true });
  const found = holdersByName(await timed(args, index, 'list', () => index.list()), matches);
  if (found.length === 0) {
    // An exact name nobody has keeps its own error ("no peer has ...").
    throw exactMiss ?? new PeerdexError('ERR_NOT_FOUND', `no name in index ${index.label} ${args.contains ? 'contains' : 'matches'} "${escapeForTerminal(pattern)}"`);
  }
  if (args.json) return printJson({ pattern, contains: args.contains, matches: found });
  if (exactMiss && !args.quiet) process.stdout.write(`no name is exactly "${escapeForTerminal(pattern)}"; names containing it:\n`);
  for (const m of found) {
    const where = m.holders.map((h) => formatHostPort(h.addr, h.port)).join(', ');
    process.stdout.write(`"${escapeForTerminal(m.filename)}" is held by ${where}\n`);
  }
}

export async function listCommand(args: IndexArgs & OutputArgs & { long: boolean }): Promise<void> {
  const index = indexClientFrom(args);
  const servers = await timed(args, index, 'list', () => index.list());
  if (args.json) {
    printJson({ servers: servers.map((s) => ({ addr: s.addr, port: s.port, names: s.names })) });
    return;
  }
  if (servers.length === 0) {
    if (!args.quiet) process.stdout.write(`index ${index.label} lists no content\n`);
    return;
  }
  const total = servers.reduce((n, s) => n + s.names.length, 0);
  if (!args.quiet) process.stdout.write(`index ${index.label}: ${servers.length} content server(s), ${total} registration(s)\n`);
  const width = process.stdout.isTTY ? process.stdout.columns : 80;
  for (const line of listingBlocks(servers, { width, long: args.long })) process.stdout.write(`${line}\n`);
}
