/**
 * Output helpers shared by the CLIs: the only code (with the bins) that writes to the
 * terminal or sets the exit code.
 */
import { isPeerdexError } from '../protocol/errors.js';
import { isControlChar } from '../protocol/fields.js';

/**
 * Characters that are invisible yet change what a line shows: bidi embeddings, overrides,
 * isolates and marks (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C) can reorder the
 * text around a name, zero-width characters (U+200B-U+200D, U+2060, U+FEFF) make two names
 * look alike, and U+2028/U+2029 break lines in some terminals and viewers.
 */
export function isInvisibleFormatChar(cp: number): boolean {
  if (cp < 0x2000) return cp === 0x061c;
  return (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) || cp === 0x2060 || (cp >= 0x2066 && cp <= 0x2069) || cp === 0xfeff;
}

/**
 * Replaces control characters (escape sequences included), lone surrogates and invisible
 * format characters with visible \xNN / \uNNNN text.
 */
export function escapeForTerminal(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (isControlChar(cp)) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if ((cp >= 0xd800 && cp <= 0xdfff) || isInvisibleFormatChar(cp)) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out;
}

export const timestamp = (): string => new Date().toISOString();

let jsonErrors = false;

/** With --json an error is a JSON document on stdout instead of a line on stderr. */
export function setJsonErrors(on: boolean): void {
  jsonErrors = on;
}

/**
 * One line on stderr, no stack trace, and a failing exit status; with --json instead
 * `{"error": {"code", "message", ...details}}` on stdout.
 */
export function reportFailure(prog: string, err: unknown): void {
  const message = isPeerdexError(err) ? err.message : err instanceof Error ? err.message : String(err);
  if (jsonErrors) {
    const code = isPeerdexError(err) ? err.code : 'ERR_INTERNAL';
    const details = isPeerdexError(err) ? err.details : undefined;
    process.stdout.write(`${JSON.stringify({ error: { code, message, ...details } }, null, 2)}\n`);
  } else process.stderr.write(`${prog}: ${escapeForTerminal(message)}\n`);
  process.exitCode = 1;
}

/** Parses the command line; a usage error is reported (as a line, or JSON with --json) and ends the process. */
export function parseOrExit<T>(prog: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    reportFailure(prog, err);
    process.exit(1);
  }
}

/** Runs `main`, turning any rejection into a one-line error and exit code 1. */
export function runMain(prog: string, main: () => Promise<void>): void {
  let settled = false;
  // A command whose promise never settles would otherwise exit 0 with nothing said.
  process.once('beforeExit', () => {
    if (!settled) reportFailure(prog, new Error('internal error: the command stopped before it finished'));
  });
  main().then(
    () => (settled = true),
    (err: unknown) => {
      settled = true;
      reportFailure(prog, err);
      // Sockets or timers left open by the failed command must not keep the process alive.
      setImmediate(() => process.exit(1)).unref();
    },
  );
}
