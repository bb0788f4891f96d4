/**
 * One vocabulary for every command, through the real bins: JSON errors on stdout, options
 * from PEERDEX_* variables and a --config file (flag > environment > file > default), the
 * typo suggestion, an example for a missing argument, durations with units, checked numbers,
 * digests in hex, the --refresh warning and shell completion.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/cli/common.js';
import { Child, Fixtures, INDEX_BIN, PEER_BIN, ROOT, sha256Text } from '../helpers/peer-fixtures.js';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

/** The environment of a run: no PEERDEX_* variables but those a test sets. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { NO_COLOR: '1' };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PEERDEX_')) env[k] = v;
  return { ...env, ...extra };
}

/** Runs a bin to its end with a chosen environment and folder. */
async function run(bin: string, args: string[], options: { env?: Record<string, string>; cwd?: string } = {}) {
  const child = new Child(spawn(process.execPath, [bin, ...args], { cwd: options.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv(options.env ?? {}) }));
  fx.track(() => child.kill('SIGKILL'));
  const exit = await child.waitExit(15_000);
  return { ...exit, stdout: child.stdout, stderr: child.stderr };
}

/** A UDP socket that never answers: a request to it fails naming its address and the tries. */
async function silentIndex(): Promise<string> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  fx.track(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return `127.0.0.1:${socket.address().port}`;
}

const oneLine = (r: { code: number | null; stdout: string; stderr: string }): string => {
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/^[a-z-]+: [^\n]+\n$/);
  return r.stderr.trimEnd();
};

const jsonError = (r: { code: number | null; stdout: string; stderr: string }): { code: string; message: string } => {
  expect(r.code).toBe(1);
  expect(r.stderr).toBe('');
  const doc = JSON.parse(r.stdout) as { error: { code: string; message: string } };
  expect(Object.keys(doc)).toEqual(['error']);
  return doc.error;
};

describe('durations', () => {
  it("takes units, and a plain number in the flag's own unit", () => {
    expect(parseDuration('300ms', 'timeout', 'ms')).toBe(300);
    expect(parseDuration('300', 'timeout', 'ms')).toBe(300);
    expect(parseDuration(2, 'wait', 's')).toBe(2000);
    expect(parseDuration('1.5s', 'wait', 's')).toBe(1500);
    expect(parseDuration('1m', 'refresh', 's')).toBe(60_000);
    expect(parseDuration('0.1', 'rescan', 's')).toBe(100);
    expect(parseDuration('0', 'settle', 's', { allowZero: true })).toBe(0);
    expect(() => parseDuration('2 weeks', 'wait', 's')).toThrow('--wait must be a duration like 300ms, 2s or 1m (a plain number is seconds), got "2 weeks"');
    expect(() => parseDuration('0', 'refresh', 's')).toThrow('--refresh must be more than 0 up to 24 h, got "0"');
    expect(() => parseDuration('2d', 'wait', 's')).toThrow('got "2d"');
  });

  it('work on the command line: --timeout 20ms, and a bad one names the flag and the value', async () => {
    const index = await silentIndex();
    const started = Date.now();
    const r = await run(PEER_BIN, ['search', 'x', '--index', index, '--timeout', '20ms', '--tries', '2']);
    expect(oneLine(r)).toBe(`peer: index ${index} did not answer after 2 tries`);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(oneLine(await run(PEER_BIN, ['list', '--timeout', 'soon']))).toBe(
      'peer: --timeout must be a duration like 300ms, 2s or 1m (a plain number is milliseconds), got "soon"',
    );
    expect(oneLine(await run(PEER_BIN, ['download', 'x', '--wait', '5x']))).toBe('peer: --wait must be a duration like 300ms, 2s or 1m (a plain number is seconds), got "5x"');
    expect(oneLine(await run(PEER_BIN, ['list', '--timeout', '2m']))).toBe('peer: --timeout must be more than 0 up to 60 s, got "2m"');
  });

  it('peer serve --rescan 200ms --refresh 1m: files picked up quickly, and a warning about the TTL', async () => {
    const { addr } = await fx.indexBin();
    const dir = await fx.tempDir();
    await writeFile(join(dir, 'a.txt'), 'a');
    const serve = await fx.serveBin(dir, addr, ['--rescan', '200ms', '--refresh', '1m']);
    expect(serve.child.stdout).toMatch(/warning: --refresh 60 s is longer than a third of the index's TTL/);
    expect(serve.child.stdout).toContain('refreshing every 60 s');
    await writeFile(join(dir, 'b.txt'), 'b');
    await serve.child.waitForLine(/registered "b\.txt"/, 3000);
    serve.child.kill('SIGINT');
    await serve.child.waitExit();

    const quiet = await fx.serveBin(dir, addr, ['--refresh', '30s']);
    expect(quiet.child.stdout).not.toContain('warning: --refresh');
  });
});

describe('numbers and ports', () => {
  it.each([
    [['search', 'x', '--tries', 'many'], '--tries must be a whole number from 1 to 100, got "many"'],
    [['register', 'x', '--port', 'abc'], '--port must be a port number 1..65535, got "abc"'],
    [['download', 'x', '--port', 'abc'], '--port must be a port number 1..65535, got "abc"'],
    [['serve', '--port', '-5'], '--port must be a port number 0..65535 (0 = any free port), got "-5"'],
    [['serve', '--max-connections', '0'], '--max-connections must be a whole number 1 or more, got "0"'],
    [['download', 'x', '--jobs', 'NaN'], '--jobs must be a whole number from 1 to 64, got "NaN"'],
    [['list', '--index'], '--index needs a value (see peer list --help)'],
  ])('peer %j says %s', async (args, message) => {
    expect(oneLine(await run(PEER_BIN, args))).toBe(`peer: ${message}`);
  });

  it.each([
    [['--port', 'abc'], '--port must be a port number 0..65535 (0 = any free port), got "abc"'],
    [['--ttl', '5q'], '--ttl must be a duration like 300ms, 2s or 1m (a plain number is seconds), got "5q"'],
    [['--max-registrations', '-1'], '--max-registrations must be a whole number 0 or more, got "-1"'],
  ])('index-server %j says %s', async (args, message) => {
    expect(oneLine(await run(INDEX_BIN, args))).toBe(`index-server: ${message}`);
  });
});

describe('usage errors', () => {
  it('suggests the command meant', async () => {
    expect(oneLine(await run(PEER_BIN, ['donwload', 'hello.txt']))).toBe('peer: unknown command "donwload" (did you mean download?)');
    expect(oneLine(await run(PEER_BIN, ['--index', '127.0.0.1:9', 'serch', 'x']))).toBe('peer: unknown command "serch" (did you mean search?)');
    expect(oneLine(await run(PEER_BIN, ['frobnicate']))).toMatch(/^peer: unknown command "frobnicate" \(commands: serve, register, deregister, search, list, download/);
  });

  it('shows an example for a missing argument', async () => {
    expect(oneLine(await run(PEER_BIN, ['download']))).toContain('peer download NAME, for example: peer download hello.txt');
    expect(oneLine(await run(PEER_BIN, ['search']))).toContain('peer search NAME, for example: peer search hello.txt');
    expect(oneLine(await run(PEER_BIN, ['register']))).toContain('peer register FILE --port PORT, for example: peer register shared-files/hello.txt --port 9100');
    expect(oneLine(await run(PEER_BIN, ['deregister']))).toContain('for example: peer deregister hello.txt --port 9100');
  });

  it('names an unknown option as typed', async () => {
    expect(oneLine(await run(PEER_BIN, ['list', '--colour']))).toBe('peer: unknown option or argument --colour (see peer list --help)');
  });
});

describe('--json errors', () => {
  it('an index that does not answer, a name nobody has, a usage error, a typo: one JSON object on stdout, exit 1', async () => {
    const index = await silentIndex();
    expect(jsonError(await run(PEER_BIN, ['list', '--index', index, '--timeout', '20', '--tries', '1', '--json']))).toEqual({
      code: 'ERR_TIMEOUT',
      message: `index ${index} did not answer after 1 try`,
    });

    const { addr } = await fx.indexBin();
    const missing = jsonError(await run(PEER_BIN, ['search', 'nope', '--index', addr, '--json']));
    expect(missing.code).toBe('ERR_NOT_FOUND');
    expect(missing.message).toContain('nope');

    expect(jsonError(await run(PEER_BIN, ['register', 'x', '--port', 'abc', '--json']))).toEqual({
      code: 'ERR_USAGE',
      message: '--port must be a port number 1..65535, got "abc"',
    });
    expect(jsonError(await run(PEER_BIN, ['donwload', '--json']))).toEqual({ code: 'ERR_USAGE', message: 'unknown command "donwload" (did you mean download?)' });
    expect(jsonError(await run(PEER_BIN, ['download', '--json'])).message).toContain('peer download NAME');
    expect(jsonError(await run(PEER_BIN, ['list', '--bogus'], { env: { PEERDEX_JSON: 'true' } })).code).toBe('ERR_USAGE');
  });

  it('index-server --json: usage errors as JSON too', async () => {
    expect(jsonError(await run(INDEX_BIN, ['--port', 'abc', '--json']))).toEqual({
      code: 'ERR_USAGE',
      message: '--port must be a port number 0..65535 (0 = any free port), got "abc"',
    });
    expect(jsonError(await run(INDEX_BIN, ['--nonsense', '--json'])).message).toContain('--nonsense');
  });
});

describe('configuration: flag > environment > config file > default', () => {
  it('takes each option from the strongest source that sets it', async () => {
    const [fromFile, fromEnv, fromFlag] = [await silentIndex(), await silentIndex(), await silentIndex()];
    const dir = await fx.tempDir();
    const config = join(dir, 'peerdex.json');
    // Options of other commands (dir, seed) are fine in a shared file.
    await writeFile(config, JSON.stringify({ index: fromFile, timeout: '20ms', tries: 1, dir: '/elsewhere', seed: true }));

    const fileOnly = await run(PEER_BIN, ['list', '--config', config]);
    expect(oneLine(fileOnly)).toBe(`peer: index ${fromFile} did not answer after 1 try`);

    const env = { PEERDEX_INDEX: fromEnv, PEERDEX_TRIES: '2', PEERDEX_DIR: '/not/for/list' };
    expect(oneLine(await run(PEER_BIN, ['list', '--config', config], { env }))).toBe(`peer: index ${fromEnv} did not answer after 2 tries`);
    expect(oneLine(await run(PEER_BIN, ['list', '--config', config, '--index', fromFlag, '--tries', '3'], { env }))).toBe(`peer: index ${fromFlag} did not answer after 3 tries`);
    // Only the index from the environment: the tries still come from the file.
    expect(oneLine(await run(PEER_BIN, ['list', '--config', config], { env: { PEERDEX_INDEX: fromEnv } }))).toBe(`peer: index ${fromEnv} did not answer after 1 try`);
    // The config file named by the environment, and --json from the file.
    await writeFile(config, JSON.stringify({ index: fromFile, timeout: '20ms', tries: 1, json: true }));
    expect(jsonError(await run(PEER_BIN, ['list'], { env: { PEERDEX_CONFIG: config } }))).toEqual({ code: 'ERR_TIMEOUT', message: `index ${fromFile} did not answer after 1 try` });
  });

  it('checks values from every source the same way, and says what is wrong with a config file', async () => {
    const dir = await fx.tempDir();
    expect(oneLine(await run(PEER_BIN, ['list'], { env: { PEERDEX_TIMEOUT: 'later' } }))).toBe(
      'peer: --timeout must be a duration like 300ms, 2s or 1m (a plain number is milliseconds), got "later"',
    );
    await writeFile(join(dir, 'bad.json'), '{"index": ');
    expect(oneLine(await run(PEER_BIN, ['list', '--config', 'bad.json'], { cwd: dir }))).toMatch(/^peer: --config \S+bad\.json is not valid JSON: /);
    expect(oneLine(await run(PEER_BIN, ['list', '--config', join(dir, 'none.json')]))).toBe(`peer: --config ${join(dir, 'none.json')}: cannot read it: no such file`);
    await writeFile(join(dir, 'ports.json'), JSON.stringify({ port: 'ninety' }));
    expect(oneLine(await run(PEER_BIN, ['deregister', 'x', '--config', join(dir, 'ports.json')]))).toBe('peer: --port must be a port number 1..65535, got "ninety"');
  });

  it('index-server: PEERDEX_INDEX_SERVER_* and --config, with the same precedence', async () => {
    const dir = await fx.tempDir();
    const config = join(dir, 'index.json');
    await writeFile(config, JSON.stringify({ ttl: '2m', host: '127.0.0.1', port: 0 }));
    const fromFile = fx.spawn(INDEX_BIN, ['--config', config]);
    await fromFile.waitForLine(/index listening on udp 127\.0\.0\.1:\d+ \(ttl 120 s\)/);
    const env = new Child(spawn(process.execPath, [INDEX_BIN, '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv({ PEERDEX_INDEX_SERVER_TTL: '3m' }) }));
    fx.track(() => env.kill('SIGKILL'));
    await env.waitForLine(/\(ttl 180 s\)/);
    const flag = fx.spawn(INDEX_BIN, ['--config', config, '--ttl', '45']);
    await flag.waitForLine(/\(ttl 45 s\)/);
  });
});

describe('digests in hex', () => {
  it('--hex shows SHA-256 as sha256sum does; --json has both', async () => {
    const { addr } = await fx.indexBin();
    const dir = await fx.tempDir();
    await writeFile(join(dir, 'hello.txt'), 'hello\n');
    const b64 = sha256Text(Buffer.from('hello\n'));
    const hex = Buffer.from(b64, 'base64url').toString('hex');
    const serve = await fx.serveBin(dir, addr, ['--hex']);
    expect(serve.child.stdout).toContain(`registered "hello.txt" (6 B, sha256 ${hex})`);

    const plain = await run(PEER_BIN, ['search', 'hello.txt', '--index', addr]);
    expect(plain.stdout).toContain(`(sha256 ${b64})`);
    const inHex = await run(PEER_BIN, ['search', 'hello.txt', '--index', addr, '--hex']);
    expect(inHex.stdout).toBe(`"hello.txt" is held by 127.0.0.1:${serve.port} (sha256 ${hex})\n`);
    const json = JSON.parse((await run(PEER_BIN, ['search', 'hello.txt', '--index', addr, '--json'])).stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ sha256: b64, sha256Hex: hex });

    const dl = await fx.tempDir();
    const got = await run(PEER_BIN, ['download', 'hello.txt', '--dir', dl, '--port', '9', '--no-register', '--index', addr, '--hex']);
    expect(got.stdout).toContain(`sha256 ${hex} verified`);
    const again = JSON.parse((await run(PEER_BIN, ['download', 'hello.txt', '--dir', dl, '--port', '9', '--no-register', '--index', addr, '--json'])).stdout) as Record<
      string,
      unknown
    >;
    expect(again).toMatchObject({ sha256: b64, sha256Hex: hex, alreadyHad: true });
  });
});

describe('--quiet and --verbose', () => {
  it('quiet prints only results; verbose says which index answered', async () => {
    const { addr } = await fx.indexBin();
    const dir = await fx.tempDir();
    await writeFile(join(dir, 'one.txt'), '1');
    await fx.serveBin(dir, addr);
    const quiet = await run(PEER_BIN, ['list', '--index', addr, '--quiet']);
    expect(quiet.stdout).not.toContain('content server(s)');
    expect(quiet.stdout).toContain('one.txt');
    const verbose = await run(PEER_BIN, ['list', '--index', addr, '-v']);
    expect(verbose.stderr).toMatch(new RegExp(`^peer: list: index ${addr.replace(/\./g, '\\.')}, \\d+ ms\\n$`));
    const dl = await fx.tempDir();
    const silent = await run(PEER_BIN, ['download', 'one.txt', '--dir', dl, '--port', '9', '--no-register', '--index', addr, '-q']);
    expect(silent).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });
});

describe('completion', () => {
  it('peer completion prints a script for the shell', async () => {
    const r = await run(PEER_BIN, ['completion']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('peer --get-yargs-completions');
    const words = await run(PEER_BIN, ['--get-yargs-completions', 'peer', 'd']);
    expect(words.stdout.split('\n')).toEqual(expect.arrayContaining(['download', 'deregister']));
  });
});
