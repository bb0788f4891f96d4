/**
 * Shared fixtures for the peer and peer-CLI tests: temp folders, an in-process IndexServer
 * and ContentServer on 127.0.0.1 port 0, a raw TCP client that reads content answers byte by
 * byte, and child processes of the real bins with bounded waits for their log lines.
 *
 * Every fixture is registered with a `Fixtures` object whose `cleanup()` (called from
 * afterEach) closes servers and sockets, kills children still running and removes folders.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IndexServer, type IndexServerOptions } from '../../src/index/udp-server.js';
import { ContentServer, type ContentServerEvent, type ContentServerOptions } from '../../src/peer/content-server.js';
import { FileLibrary } from '../../src/peer/file-library.js';
import { IndexClient, type IndexClientOptions } from '../../src/peer/index-client.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const INDEX_BIN = join(ROOT, 'dist/src/cli/index-server.js');
export const PEER_BIN = join(ROOT, 'dist/src/cli/peer.js');

export const PDU_BYTES = 100;
export const MiB = 1024 * 1024;

/** SHA-256 as the protocol writes it: base64url, no padding. */
export const sha256Text = (data: Uint8Array): string => createHash('sha256').update(data).digest('base64url');

/** `size` bytes of content holding every byte value (0..255 first, then a seeded pattern). */
export function binaryContent(size: number, seed = 1): Buffer {
  const buf = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    if (i < 256) {
      buf[i] = i;
      continue;
    }
    // xorshift32: fast, deterministic, every byte value appears.
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

/** A 100-byte PDU from a type letter and raw data (no field checks: tests send bad ones). */
export function rawPdu(type: string, data: string | Uint8Array = ''): Buffer {
  const out = Buffer.alloc(PDU_BYTES);
  out.write(type, 0, 1, 'latin1');
  if (typeof data === 'string') out.write(data, 1, PDU_BYTES - 1, 'utf8');
  else out.set(data.subarray(0, PDU_BYTES - 1), 1);
  return out;
}

/** The exact bytes a C header must have: 'C', the text, NUL padding to 100. */
export const expectedHeader = (numPackets: number, size: number, sha256: string): Buffer => rawPdu('C', `${numPackets};${size};${sha256}`);

/** Resolves after `ms` milliseconds (only for short settle waits, never as a sync point). */
export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every few ms until it returns a truthy value; throws after `timeoutMs`. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 5000, what = 'condition'): Promise<NonNullable<Awaited<T>>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(5);
  }
}

// ---- raw TCP client ---------------------------------------------------------------------

export type RawAnswer =
  | { type: 'E'; code: number; description: string; bytes: Buffer }
  | { type: 'C'; numPackets: number; size: number; sha256: string; header: Buffer; frames: { id: number; length: number }[]; content: Buffer };

/** A plain TCP client that collects everything the server sends and reads it in exact sizes. */
export class RawClient {
  readonly socket: net.Socket;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #closed = false;
  #wake: (() => void) | undefined;
  readonly closedPromise: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      this.#wake?.();
    });
    socket.on('error', () => {});
    this.closedPromise = new Promise((resolve) =>
      socket.once('close', () => {
        this.#closed = true;
        this.#wake?.();
        resolve();
      }),
    );
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host, noDelay: true });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawClient(socket));
      });
    });
  }

  get buffered(): number {
    return this.#buffered;
  }

  get closed(): boolean {
    return this.#closed;
  }

  write(data: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** Exactly `n` bytes; throws if the connection closes first or nothing comes in time. */
  async read(n: number, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.#buffered < n) {
      if (this.#closed) throw new Error(`connection closed with ${this.#buffered} of ${n} bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out with ${this.#buffered} of ${n} bytes`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    const all = this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    return out;
  }

  /** Reads one answer: an E PDU, or a C header and all its frames (checked as they come). */
  async readAnswer(timeoutMs = 10_000): Promise<RawAnswer> {
    const pdu = await this.read(PDU_BYTES, timeoutMs);
    const end = pdu.indexOf(0, 1);
    const text = pdu.subarray(1, end === -1 ? PDU_BYTES : end).toString('utf8');
    const type = String.fromCharCode(pdu[0]);
    if (type === 'E') {
      const [code, ...rest] = text.split(';');
      return { type: 'E', code: Number(code), description: rest.join(';'), bytes: pdu };
    }
    if (type !== 'C') throw new Error(`expected C or E, got ${JSON.stringify(type)} (${JSON.stringify(text)})`);
    const [packets, sizeText, sha256] = text.split(';');
    const numPackets = Number(packets);
    const size = Number(sizeText);
    const frames: { id: number; length: number }[] = [];
    const parts: Buffer[] = [];
    for (let i = 0; i < numPackets; i++) {
      const head = await this.read(9, timeoutMs);
      if (head[0] !== 0x43) throw new Error(`frame ${i} starts with 0x${head[0].toString(16)}`);
      const id = head.readUInt32BE(1);
      const length = head.readUInt32BE(5);
      frames.push({ id, length });
      if (length < 1 || length > MiB) throw new Error(`frame ${i} has length ${length}`);
      parts.push(Buffer.from(await this.read(length, timeoutMs)));
    }
    return { type: 'C', numPackets, size, sha256: sha256, header: pdu, frames, content: Buffer.concat(parts) };
  }

  /** Resolves when the server closes the connection; throws after `timeoutMs`. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.closedPromise,
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`connection still open after ${timeoutMs} ms`)), timeoutMs))),
    ]).finally(() => clearTimeout(timer));
  }

  close(): void {
    this.socket.destroy();
  }
}

// ---- child processes ----------------------------------------------------------------------

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running bin: its output so far, line by line, and bounded waits on it. */
export class Child {
  readonly proc: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;
  #exit: Exit | undefined;
  #wake = new Set<() => void>();

  constructor(proc: ChildProcess) {
    this.proc = proc;
    proc.stdout!.setEncoding('utf8');
    proc.stderr!.setEncoding('utf8');
    proc.stdout!.on('data', (s: string) => {
      this.stdout += s;
      this.#notify();
    });
    proc.stderr!.on('data', (s: string) => {
      this.stderr += s;
      this.#notify();
    });
    this.exited = new Promise((resolve) =>
      proc.once('close', (code, signal) => {
        this.#exit = { code, signal };
        this.#notify();
        resolve(this.#exit);
      }),
    );
  }

  get exit(): Exit | undefined {
    return this.#exit;
  }

  get lines(): string[] {
    return this.stdout.split('\n').filter((l) => l.length > 0);
  }

  /** The first stdout line matching `re` (waits for it); fails if the process exits first. */
  async waitForLine(re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const line of this.lines) {
        const m = re.exec(line);
        if (m) return m;
      }
      if (this.#exit) throw new Error(`process exited (${JSON.stringify(this.#exit)}) before printing ${re}; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line matching ${re} within ${timeoutMs} ms; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#wake.add(done);
      });
    }
  }

  /** Waits for the exit; kills the process and throws after `timeoutMs`. */
  async waitExit(timeoutMs = 10_000): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.proc.kill('SIGKILL');
        reject(new Error(`process still running after ${timeoutMs} ms; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`));
      }, timeoutMs);
    });
    return Promise.race([this.exited, timeout]).finally(() => clearTimeout(timer));
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.#exit) this.proc.kill(signal);
  }

  #notify(): void {
    const waiters = [...this.#wake];
    this.#wake.clear();
    for (const w of waiters) w();
  }
}

// ---- the fixture registry -----------------------------------------------------------------

export class Fixtures {
  readonly #closers: (() => unknown)[] = [];
  readonly #children: Child[] = [];

  /** Runs `close` in cleanup (last registered, first closed). */
  track(close: () => unknown): void {
    this.#closers.push(close);
  }

  async tempDir(prefix = 'peerdex-test-'): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    this.track(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  async index(options: IndexServerOptions = {}): Promise<{ server: IndexServer; port: number }> {
    const server = await IndexServer.listen({ port: 0, host: '127.0.0.1', ...options });
    this.track(() => server.close());
    return { server, port: server.address().port };
  }

  async contentServer(dir: string, options: Partial<ContentServerOptions> = {}): Promise<{ server: ContentServer; port: number; events: ContentServerEvent[] }> {
    const server = await ContentServer.listen({ library: new FileLibrary(dir), port: 0, host: '127.0.0.1', ...options });
    const events: ContentServerEvent[] = [];
    server.on('event', (e) => events.push(e));
    this.track(() => server.close());
    return { server, port: server.address().port, events };
  }

  indexClient(port: number, options: Partial<IndexClientOptions> = {}): IndexClient {
    return new IndexClient({ host: '127.0.0.1', port, timeoutMs: 150, tries: 5, ...options });
  }

  async raw(port: number): Promise<RawClient> {
    const client = await RawClient.connect(port);
    this.track(() => client.close());
    return client;
  }

  /** Starts a built bin (`node BIN args`), tracked so cleanup kills it if it still runs. */
  spawn(bin: string, args: string[], cwd = ROOT): Child {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run build\` first`);
    const proc = spawn(process.execPath, [bin, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    const child = new Child(proc);
    this.#children.push(child);
    return child;
  }

  /** Runs a bin to completion and returns its exit and output. */
  async run(bin: string, args: string[], timeoutMs = 15_000, cwd = ROOT): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
    const child = this.spawn(bin, args, cwd);
    const exit = await child.waitExit(timeoutMs);
    return { ...exit, stdout: child.stdout, stderr: child.stderr };
  }

  /** Starts `index-server --port 0` on 127.0.0.1 and reads its port from the first line. */
  async indexBin(extra: string[] = []): Promise<{ child: Child; port: number; addr: string }> {
    const child = this.spawn(INDEX_BIN, ['--port', '0', '--host', '127.0.0.1', ...extra]);
    const m = await child.waitForLine(/index listening on udp (\S+):(\d+)/);
    return { child, port: Number(m[2]), addr: `127.0.0.1:${m[2]}` };
  }

  /** Starts `peer serve --port 0` and waits until its folder is registered. */
  async serveBin(dir: string, index: string, extra: string[] = []): Promise<{ child: Child; port: number }> {
    // Files written just before are shared at once (--settle 0) unless a test asks otherwise.
    const settle = extra.includes('--settle') ? [] : ['--settle', '0'];
    const child = this.spawn(PEER_BIN, ['serve', '--dir', dir, '--port', '0', '--host', '127.0.0.1', '--index', index, ...settle, ...extra]);
    const m = await child.waitForLine(/serving .* on tcp \S+:(\d+)/);
    await child.waitForLine(/file\(s\) registered/);
    return { child, port: Number(m[1]) };
  }

  async cleanup(): Promise<void> {
    const children = this.#children.splice(0);
    await Promise.all(
      children.map(async (c) => {
        if (!c.exit) c.proc.kill('SIGKILL');
        await c.exited;
      }),
    );
    for (const close of this.#closers.splice(0).reverse()) {
      try {
        await close();
      } catch {
        // one failing close must not leave the others open
      }
    }
  }
}
