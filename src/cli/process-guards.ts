/**
 * What every command does about its process's edges: a reader that went away (`peer list |
 * head -1`, `peer serve | tee log` stopped with Ctrl-C) and signals. Writing to a closed pipe
 * raises EPIPE on the stream; unhandled, Node turns it into a crash with a stack trace and a
 * `peer serve` would die before deregistering. Output to a gone reader is simply dropped.
 */

/** Drops output to stdout or stderr once its reader has gone, instead of crashing. */
export function ignoreClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return;
      throw err;
    });
  }
}

/**
 * Resolves on the first SIGINT or SIGTERM, after calling `onFirst` (which should say that a
 * second one quits at once). A second signal exits immediately with 130, whatever is still
 * being cleaned up.
 */
export function untilStopSignal(onFirst?: (signal: NodeJS.Signals) => void, prog = 'peer'): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let first: NodeJS.Signals | undefined;
    const on = (signal: NodeJS.Signals) => {
      if (first) {
        // A progress line may be half drawn with the cursor hidden: end it, show the cursor.
        if (process.stdout.isTTY) process.stdout.write('\x1b[?25h\n');
        process.stderr.write(`${prog}: ${signal} again: quitting now${prog === 'peer' ? ' (partial downloads are kept)' : ''}\n`);
        process.exit(130);
      }
      first = signal;
      onFirst?.(signal);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
