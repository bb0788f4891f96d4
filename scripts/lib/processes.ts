/**
 * Runs the peerdex bins as child processes for the demo and benchmarks: long-running ones
 * (index-server, peer serve) that announce their port in a log line, and one-shot commands.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { basename, dirname, join } from 'node:path';

// Compiled, this file is dist/scripts/lib/processes.js; run from source (vitest) it is
// scripts/lib/processes.ts. Either way the bins are the compiled ones under dist/.
const here = dirname(fileURLToPath(import.meta.url));
const dist = basename(join(here, '..', '..')) === 'dist' ? join(here, '..', '..') : join(here, '..', '..', 'dist');
export const BIN = {
  index: join(dist, 'src', 'cli', 'index-server.js'),
  peer: join(dist, 'src', 'cli', 'peer.js'),
};

export interface Service {
  child: ChildProcess;
  port: number;
  /** Every line it printed so far. */
  lines: string[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts a bin and waits (up to `timeoutMs`) for a line matching `portLine`, whose group 1 is the port. */
export async function startService(bin: string, args: string[], portLine: RegExp, timeoutMs = 10_000): Promise<Service> {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0] ?? bin} did not start within ${timeoutMs} ms: ${lines.join(' | ')}`)), timeoutMs);
    const onLine = (line: string) => {
      lines.push(line);
      const m = portLine.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    splitLines(child.stdout, onLine);
    splitLines(child.stderr, onLine);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args[0] ?? bin} exited with ${code} before it was ready: ${lines.join(' | ')}`));
    });
  });
  return {
    child,
    port,
    lines,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = (await once(child, 'exit')) as [number | null];
      return code;
    },
  };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a one-shot command to completion (killed after `timeoutMs`). */
export async function run(bin: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

function splitLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let rest = '';
  stream.on('data', (d: Buffer) => {
    rest += d.toString();
    const parts = rest.split('\n');
    rest = parts.pop()!;
    for (const p of parts) onLine(p);
  });
}
