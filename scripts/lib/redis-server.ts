/**
 * A throwaway redis-server for the cluster demo and benchmark: a free loopback port, no
 * persistence, killed by stop(). `redisInstalled()` says whether there is one to start.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';

export const INSTALL_REDIS = "redis-server is not installed: install it with `sudo apt-get install redis-server` (Debian, Ubuntu) or your system's package manager";

export const redisInstalled = (): boolean => spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

export interface LocalRedis {
  port: number;
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts redis-server on a free port of 127.0.0.1 and waits until it answers PING. */
export async function startRedis(): Promise<LocalRedis> {
  const port = await freePort();
  const child = spawnRedis(port);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  };
  try {
    await waitForPing(port, () => child.exitCode !== null);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, url: `redis://127.0.0.1:${port}`, child, stop };
}

/** redis-server on `port` of 127.0.0.1, with nothing saved to disk. */
export const spawnRedis = (port: number): ChildProcess =>
  spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });

/** Waits until redis-server on `port` answers PING (5 s at most, or until `gone()`). */
export async function waitForPing(port: number, gone: () => boolean = () => false, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ping(port))) {
    if (Date.now() > deadline || gone()) throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Sends one inline command and returns the first reply line (RESP, as text). */
export function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(2000, () => socket.destroy());
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (d) => {
      reply += d.toString('latin1');
      if (reply.includes('\r\n')) socket.end();
    });
    socket.on('close', () => resolve(reply.split('\r\n')[0] ?? ''));
    socket.on('error', () => {});
  });
}

const ping = async (port: number) => (await redisCommand(port, 'PING')) === '+PONG';

/** A TCP port of 127.0.0.1 that nothing listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
