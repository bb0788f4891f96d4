import { afterEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import dgram from 'node:dgram';
import { IndexServer } from '../../src/index/udp-server.js';
import { UdpClient, rawPdu } from '../helpers/udp.js';

const SCRIPT = fileURLToPath(new URL('../../scripts/protocol-check.py', import.meta.url));
const hasPython = spawnSync('python3', ['--version']).status === 0;

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** Runs the checker without blocking this event loop (the index under test lives in it). */
function check(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('python3', [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    closers.push(() => child.exitCode === null && child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe.skipIf(!hasPython)('scripts/protocol-check.py against a live IndexServer', () => {
  it('passes every step', async () => {
    const server = await IndexServer.listen({ port: 0, host: '127.0.0.1', trustClaimedAddresses: true });
    closers.push(() => server.close());
    // Other servers and names around ours, so the O sequence spans several servers and packets.
    const c = await UdpClient.open();
    closers.push(() => c.close());
    const port = server.address().port;
    for (let i = 0; i < 9; i++) await c.request(rawPdu('R', `9100;127.0.0.1;other-${i}.bin`), port);
    for (let i = 0; i < 5; i++) await c.request(rawPdu('R', `9200;127.0.0.9;${'y'.repeat(24)}${i}`), port);

    const { code, stdout, stderr } = await check(['--index', `127.0.0.1:${port}`, '--timeout', '1']);
    expect(stderr).toBe('');
    const lines = stdout.trimEnd().split('\n');
    expect(lines.filter((l) => l.startsWith('ok '))).toHaveLength(7);
    expect(lines.some((l) => l.startsWith('FAIL'))).toBe(false);
    expect(lines.at(-1)).toBe(`protocol check passed against 127.0.0.1:${port}`);
    expect(code).toBe(0);
    // It cleaned up after itself: only the other registrations are left.
    expect(server.registry.size).toBe(14);
  });

  it('fails (exit 1) against a server that answers wrongly', async () => {
    // A fake index that answers everything with an A whose padding is not NUL.
    const fake = dgram.createSocket('udp4');
    closers.push(() => new Promise<void>((r) => fake.close(() => r())));
    fake.on('message', (msg, rinfo) => {
      const reply = Buffer.alloc(100, 0x20);
      reply.write('A', 0, 'latin1');
      msg.copy(reply, 1, 1, msg.indexOf(0, 1));
      fake.send(reply, rinfo.port, rinfo.address);
    });
    const port = await new Promise<number>((r) => fake.bind(0, '127.0.0.1', () => r(fake.address().port)));
    const { code, stdout } = await check(['--index', `127.0.0.1:${port}`, '--timeout', '0.3', '--tries', '1']);
    expect(stdout).toMatch(/^FAIL {2}register: /m);
    expect(stdout).toMatch(/protocol check FAILED/);
    expect(code).toBe(1);
  });

  it('fails (exit 1) when nothing answers', async () => {
    const silent = dgram.createSocket('udp4');
    closers.push(() => new Promise<void>((r) => silent.close(() => r())));
    const port = await new Promise<number>((r) => silent.bind(0, '127.0.0.1', () => r(silent.address().port)));
    const { code, stdout } = await check(['--index', `127.0.0.1:${port}`, '--timeout', '0.2', '--tries', '2']);
    expect(stdout).toMatch(/FAIL {2}register: no reply after 2 tries/);
    expect(code).toBe(1);
  });
});
