/**
 * What both bins share on the command line: `--json`, `--quiet` and `--verbose`; options from
 * `PREFIX_NAME` environment variables and from a `--config FILE` (JSON), with the precedence
 * flag > environment > file > default (yargs applies them in that order); shell completion;
 * and usage errors that go through the same one-line (or JSON) error path as every other
 * failure, with a suggestion for a mistyped command and an example for a missing argument.
 */
import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { PeerdexError } from '../protocol/errors.js';
import { setJsonErrors } from './output.js';

export interface CommandLine {
  /** `peer` or `index-server`: the start of every error line. */
  prog: string;
  /** Environment variables `PREFIX_OPTION_NAME` set options (`PEERDEX_INDEX=...`). */
  envPrefix: string;
  /** The arguments as typed (without node and the script). */
  rawArgs: string[];
  /** The bin's commands (for `unknown command` messages); none for a bin without commands. */
  commands?: string[];
  /** For commands with a required argument: how to call it, and an example. */
  examples?: Record<string, { usage: string; example: string }>;
}

const camel = (key: string): string => key.replace(/-+([a-z0-9])/gi, (_, c: string) => c.toUpperCase());

/** The arguments before `--`. */
const optionPart = (rawArgs: string[]): string[] => {
  const end = rawArgs.indexOf('--');
  return end === -1 ? rawArgs : rawArgs.slice(0, end);
};

/** Option names typed on the command line, camel-cased (`--no-seed` -> seed, `-qv` -> q, v). */
function typedOptions(rawArgs: string[]): Set<string> {
  const typed = new Set<string>();
  for (const arg of optionPart(rawArgs)) {
    const long = /^--(?:no-)?([^=]+)/.exec(arg);
    if (long) typed.add(camel(long[1]));
    else if (/^-[^-\d]/.test(arg)) for (const ch of arg.slice(1).split('=')[0]) typed.add(ch);
  }
  return typed;
}

/** Whether the raw arguments or the environment ask for JSON (before yargs has parsed anything). */
export function jsonRequested(rawArgs: string[], envPrefix: string, env: NodeJS.ProcessEnv = process.env): boolean {
  let json = env[`${envPrefix}_JSON`] === 'true';
  for (const arg of optionPart(rawArgs)) {
    if (arg === '--json' || arg === '--json=true') json = true;
    if (arg === '--no-json' || arg === '--json=false') json = false;
  }
  return json;
}

/** Reads a `--config` file: a JSON object of options (`{"index": "10.0.0.1:9000", "timeout": "2s"}`). */
export function loadConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a folder' : (err as Error).message;
    throw new PeerdexError('ERR_USAGE', `--config ${path}: cannot read it: ${why}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new PeerdexError('ERR_USAGE', `--config ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PeerdexError('ERR_USAGE', `--config ${path} must hold a JSON object of options, like {"index": "127.0.0.1:9000"}`);
  }
  return value as Record<string, unknown>;
}

/**
 * The options every command has, environment variables, --config, completion and the error
 * path. Call on the top-level yargs before the commands.
 */
export function commonSetup<T>(y: Argv<T>, cli: CommandLine) {
  setJsonErrors(jsonRequested(cli.rawArgs, cli.envPrefix));
  const typed = typedOptions(cli.rawArgs);
  return y
    .option('json', { type: 'boolean', default: false, describe: 'print JSON for scripts; an error is {"error": {"code", "message"}} on stdout' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'print only results, warnings and errors' })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'say more about what happens' })
    .config('config', `read options from this JSON file, like {"index": "10.0.0.1:9000", "timeout": "2s"} (flags and ${cli.envPrefix}_* variables win over it)`, loadConfigFile)
    .env(cli.envPrefix)
    .middleware(onlyThisCommandsOptions(typed) as never, true)
    .completion('completion', `print a shell completion script (bash or zsh): ${cli.prog} completion >> ~/.bashrc`)
    .recommendCommands()
    .strict()
    .help()
    .fail((msg: string | null, err: Error | undefined) => {
      // A command's own failure keeps its error; yargs' complaints become a usage error.
      if (err && err.name !== 'YError') throw err;
      throw usageError(cli, err?.message ?? msg ?? 'bad usage');
    });
}

/**
 * A yargs middleware run before validation. One environment and one config file serve every
 * command: an option only another command takes (PEERDEX_DIR for `peer list`) is not this
 * command's mistake, so it is dropped; an unknown option typed on the command line stays, and
 * strict mode refuses it. Then --json from any source takes effect for errors.
 */
function onlyThisCommandsOptions(typed: Set<string>) {
  // yargs passes itself as the second argument (its typings leave it out).
  return (argv: Record<string, unknown>, yargs: { getOptions(): { key: Record<string, unknown>; alias: Record<string, string[]> } }) => {
    const options = yargs.getOptions();
    const known = new Set<string>();
    for (const key of Object.keys(options.key)) {
      known.add(camel(key));
      for (const alias of options.alias[key] ?? []) known.add(camel(alias));
    }
    for (const key of Object.keys(argv)) {
      if (key === '_' || key === '$0' || known.has(camel(key)) || typed.has(camel(key))) continue;
      delete argv[key];
    }
    setJsonErrors(argv['json'] === true);
  };
}

/** Arguments that are not options (some may be an option's value: callers look for known words). */
const words = (rawArgs: string[]): string[] => optionPart(rawArgs).filter((a) => !a.startsWith('-'));

/** Edit distance, to find which word a suggestion was made for. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length];
}

/** A yargs message as a one-line usage error that says what to do. */
export function usageError(cli: CommandLine, message: string): PeerdexError {
  // The option parsers' own messages (`--port must be ...`) are complete as they are.
  if (message.startsWith('--')) return new PeerdexError('ERR_USAGE', message);
  const typed = words(cli.rawArgs);
  const command = typed.find((w) => cli.commands?.includes(w));
  const help = `(see ${cli.prog}${command ? ` ${command}` : ''} --help)`;
  const usage = (text: string) => new PeerdexError('ERR_USAGE', text);
  const suggestion = /^Did you mean (.+)\?$/.exec(message);
  if (suggestion) {
    const wanted = suggestion[1];
    const word = [...typed].sort((a, b) => distance(a, wanted) - distance(b, wanted))[0] ?? '';
    return usage(`unknown command "${word}" (did you mean ${wanted}?)`);
  }
  const unknown = /^Unknown arguments?: (.+)$/.exec(message);
  if (unknown) {
    const names = unknown[1].split(', ');
    const stray = typed.find((w) => names.includes(w));
    if (!command && stray !== undefined && cli.commands) return usage(`unknown command "${stray}" (commands: ${cli.commands.join(', ')}) ${help}`);
    const optionNames = new Set(typedOptions(cli.rawArgs));
    const shown = names.map((n) => (optionNames.has(camel(n)) ? (n.length === 1 ? `-${n}` : `--${n}`) : `"${n}"`));
    return usage(`unknown ${names.length === 1 ? 'option or argument' : 'options or arguments'} ${shown.join(', ')} ${help}`);
  }
  if (/^Not enough non-option arguments/.test(message) && command && cli.examples?.[command]) {
    const { usage: form, example } = cli.examples[command];
    return usage(`${form}, for example: ${example} ${help}`);
  }
  const noValue = /^Not enough arguments following: (.+)$/.exec(message);
  if (noValue) return usage(`--${noValue[1]} needs a value ${help}`);
  return usage(`${message} ${help}`);
}
