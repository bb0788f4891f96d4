/**
 * Output helpers shared by the CLIs: the only code (with the bins) that writes to the
 * terminal or sets the exit code.
 */
import { isPeerdexError } from '../protocol/errors.js';
import { isControlChar } from '../protocol/fields.js';

/** Replaces control characters (escape sequences included) with visible \xNN / \uNNNN text. */
export function escapeForTerminal(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (isControlChar(cp)) out += cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`;
    else if (cp >= 0xd800 && cp <= 0xdfff) out += `\\u${cp.toString(16)}`;
    else out += ch;
  }
  return out;
}

export const timestamp = (): string => new Date().toISOString();

/** One line on stderr, no stack trace, and a failing exit status. */
export function reportFailure(prog: string, err: unknown): void {
  const message = isPeerdexError(err) ? err.message : err instanceof Error ? err.message : String(err);
  process.stderr.write(`${prog}: ${escapeForTerminal(message)}\n`);
  process.exitCode = 1;
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

/** Resolves on the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
