/**
 * A real redis-server for the cluster tests: on a free loopback port, no persistence, killed
 * afterwards. Missing redis-server fails on CI (process.env.CI) and skips with a message
 * elsewhere: `describeWithRedis` wraps a suite accordingly.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe } from 'vitest';
import { freePort, redisInstalled as installed, spawnRedis, waitForPing } from '../../scripts/lib/redis-server.js';

export const redisInstalled = installed();
const MISSING = 'redis-server is not installed (apt-get install -y redis-server; .ci/run installs it)';

/** describe() that needs redis-server: fails on CI without it, skips with a message locally. */
export function describeWithRedis(name: string, body: () => void): void {
  // On CI the suite runs even without it: RedisServer.start() throws, so every test fails.
  if (redisInstalled || process.env.CI) {
    describe(name, body);
  } else {
    console.warn(`skipping "${name}": ${MISSING}`);
    describe.skip(name, body);
  }
}

/** One redis-server for the enclosing suite: started in beforeAll, killed in afterAll. */
export function useRedisServer(): RedisServer {
  const redis = new RedisServer();
  beforeAll(() => redis.start());
  afterAll(() => redis.stop());
  return redis;
}

export class RedisServer {
  #child: ChildProcess | undefined;
  port = 0;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts a redis-server on a free port of 127.0.0.1 and waits until it answers PING. */
  async start(): Promise<void> {
    if (!redisInstalled) throw new Error(MISSING);
    this.port = await freePort();
    await this.restart();
  }

  /** (Re)starts it on the same port, empty. */
  async restart(): Promise<void> {
    await this.stop();
    const child = spawnRedis(this.port);
    this.#child = child;
    await waitForPing(this.port, () => child.exitCode !== null);
  }

  /** Kills it (SIGKILL: nothing is saved anyway) and waits for it to be gone. */
  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
}
