import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import dgram from 'node:dgram';
import { UdpClient, pduText, rawPdu } from '../helpers/udp.js';

const BIN = fileURLToPath(new URL('../../dist/src/cli/index-server.js', import.meta.url));

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];
const sockets: { close(): unknown }[] = [];

function run(args: string[]): Run {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Waits until stdout matches `re` (or the process exits, or 10 s pass). */
async function waitFor(r: Run, re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void r.exited.then(() => (exited = true));
  for (;;) {
    const m = r.stdout().match(re);
    if (m) return m;
    if (exited || Date.now() > deadline) throw new Error(`no ${re} in stdout ${JSON.stringify(r.stdout())}, stderr ${JSON.stringify(r.stderr())}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

beforeAll(() => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run "npm run build" first (npm test does it in pretest)`);
});

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(sockets.splice(0).map((s) => s.close()));
});

describe('index-server CLI', () => {
  it('prints its real port on startup, logs events, and exits 0 on SIGTERM', async () => {
    const r = run(['--port', '0', '--host', '127.0.0.1']);
    const m = await waitFor(r, /index listening on udp 127\.0\.0\.1:(\d+) \(ttl 90 s\)\n/);
    const port = Number(m[1]);
    expect(port).toBeGreaterThan(0);

    const c = await UdpClient.open();
    sockets.push(c);
    const [ack] = await c.request(rawPdu('R', '9100;;hello.txt'), port);
    expect(pduText(ack)).toEqual({ type: 'A', data: 'hello.txt' });
    await waitFor(r, /registered "hello\.txt" at 127\.0\.0\.1:9100 \(from 127\.0\.0\.1\)\n/);
    // A control character in a refused name is escaped, never written raw to the terminal.
    const [refusal] = await c.request(rawPdu('R', '9100;;\u001b[2J'), port);
    expect(pduText(refusal).type).toBe('E');
    await waitFor(r, /refused R from 127\.0\.0\.1: E 4/);
    expect(r.stdout()).not.toContain('\u001b');

    r.child.kill('SIGTERM');
    expect(await r.exited).toEqual({ code: 0, signal: null });
    expect(r.stdout()).toMatch(/SIGTERM: closed \(2 datagrams, 2 replies, 1 refused, 0 dropped\)\n$/);
    expect(r.stderr()).toBe('');
  });

  it('closes cleanly on SIGINT sent the moment the startup line appears', async () => {
    // Scripts stop the index as soon as they have read its port: the signal must not win the race.
    const once = async () => {
      const r = run(['--port', '0', '--host', '127.0.0.1', '--quiet']);
      let sent = false;
      r.child.stdout!.on('data', () => {
        if (!sent && /index listening on udp/.test(r.stdout())) sent = r.child.kill('SIGINT');
      });
      expect(await r.exited).toEqual({ code: 0, signal: null });
      expect(r.stdout()).toMatch(/SIGINT: closed \(0 datagrams/);
    };
    await Promise.all([once(), once(), once(), once()]);
  });

  it('fails with exit code 1 and one line, no stack trace, when the port is in use', async () => {
    const holder = dgram.createSocket('udp4');
    sockets.push(holder);
    const port = await new Promise<number>((resolve) => holder.bind(0, '127.0.0.1', () => resolve(holder.address().port)));
    const r = run(['--port', String(port), '--host', '127.0.0.1']);
    expect((await r.exited).code).toBe(1);
    expect(r.stderr()).toBe(`index-server: UDP port ${port} on 127.0.0.1 is already in use\n`);
    expect(r.stdout()).toBe('');
  });

  it('refuses a bad --port without a stack trace', async () => {
    const r = run(['--port', '70000']);
    const { code } = await r.exited;
    expect(code).not.toBe(0);
    expect(r.stderr()).toBe('index-server: --port must be a port number 0..65535 (0 = any free port), got "70000"\n');
    expect(r.stderr()).not.toMatch(/\n\s+at /);
  });
});
