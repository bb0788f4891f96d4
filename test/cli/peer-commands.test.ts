/**
 * The one-shot `peer` subcommands and `peer serve`'s folder watching, through the real bin
 * (dist/) against a real index-server child, and their one-line errors.
 */
import dgram from 'node:dgram';
import { rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Fixtures, PEER_BIN, sha256Text } from '../helpers/peer-fixtures.js';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

/** Exit 1, nothing on stdout, exactly one line on stderr starting with `peer: `. */
function expectOneLineFailure(r: { code: number | null; stdout: string; stderr: string }): string {
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/^peer: [^\n]+\n$/);
  expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/); // no stack trace
  return r.stderr.trim();
}

describe('register, search, deregister', () => {
  it('registers a local file with its digest and deregisters it again', async () => {
    const { addr } = await fx.indexBin();
    const dir = await fx.tempDir();
    await writeFile(join(dir, 'paper.pdf'), 'pdf bytes');
    const digest = sha256Text(Buffer.from('pdf bytes'));

    // Nothing serves it yet: no registration may point at an empty port.
    const phantom = await fx.run(PEER_BIN, ['register', join(dir, 'paper.pdf'), '--port', '7100', '--index', addr]);
    expect(expectOneLineFailure(phantom)).toBe(
      `peer: nothing on this host's port 7100 serves "paper.pdf" with this content; run peer serve --dir ${dir} --port 7100 (it registers its files itself)`,
    );

    const { port } = await fx.contentServer(dir);
    const reg = await fx.run(PEER_BIN, ['register', join(dir, 'paper.pdf'), '--port', String(port), '--index', addr, '--json']);
    expect(reg.code).toBe(0);
    expect(JSON.parse(reg.stdout)).toEqual({ registered: 'paper.pdf', port, sha256: digest, sha256Hex: Buffer.from(digest, 'base64url').toString('hex'), size: 9, index: addr });

    const found = await fx.run(PEER_BIN, ['search', 'paper.pdf', '--index', addr, '--json']);
    expect(JSON.parse(found.stdout)).toEqual({ filename: 'paper.pdf', addr: '127.0.0.1', port, sha256: digest, sha256Hex: Buffer.from(digest, 'base64url').toString('hex') });

    const dereg = await fx.run(PEER_BIN, ['deregister', 'paper.pdf', '--port', String(port), '--index', addr]);
    expect(dereg.code).toBe(0);
    expect(dereg.stdout).toBe(`deregistered "paper.pdf" (content port ${port}) from index ${addr}\n`);
    expect(dereg.stderr).toContain(`a peer on this host still serves "paper.pdf" on port ${port}; its next refresh registers it again`);

    const gone = await fx.run(PEER_BIN, ['search', 'paper.pdf', '--index', addr]);
    expect(expectOneLineFailure(gone)).toContain('paper.pdf');
    const list = await fx.run(PEER_BIN, ['list', '--index', addr]);
    expect(list.stdout).toBe(`index ${addr} lists no content\n`);
  });

  it('refuses to deregister what is not registered', async () => {
    const { addr } = await fx.indexBin();
    const r = await fx.run(PEER_BIN, ['deregister', 'never.txt', '--port', '7100', '--index', addr]);
    expect(expectOneLineFailure(r)).toContain('never.txt');
  });
});

describe('one-line errors', () => {
  it('says the index did not answer after N tries', async () => {
    const silent = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
    fx.track(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    const port = silent.address().port;
    const r = await fx.run(PEER_BIN, ['search', 'x', '--index', `127.0.0.1:${port}`, '--timeout', '20', '--tries', '2']);
    expect(expectOneLineFailure(r)).toBe(`peer: index 127.0.0.1:${port} did not answer after 2 tries`);
  });

  it.each([
    [['search', 'x', '--index', 'nonsense:port'], '--index must be host:port'],
    [['search', '../x'], 'cannot search for "../x"'],
    [['register', '/definitely/not/here.txt'], 'cannot read /definitely/not/here.txt: no such file'],
    [['download', 'x', '--port', '70000'], '--port must be a port number'],
    [['frobnicate'], 'frobnicate'],
    [[], 'name a command'],
  ])('fails cleanly on bad usage: peer %j', async (args, says) => {
    expect(expectOneLineFailure(await fx.run(PEER_BIN, [...args, '--timeout', '20', '--tries', '1']))).toContain(says);
  });
});

describe('peer serve', () => {
  it('picks up added files, drops removed ones, and deregisters all on SIGINT', async () => {
    const { addr } = await fx.indexBin();
    const dir = await fx.tempDir();
    await writeFile(join(dir, 'first.txt'), 'one');
    await writeFile(join(dir, 'bad\x01name'), 'unsafe name, not shared');
    const serve = await fx.serveBin(dir, addr, ['--rescan', '0.1']);
    expect(serve.child.stdout).toContain('warning: not sharing "bad\\x01name"');
    const names = async () => {
      const r = await fx.run(PEER_BIN, ['list', '--index', addr, '--json']);
      return (JSON.parse(r.stdout) as { servers: { names: string[] }[] }).servers.flatMap((s) => s.names).sort();
    };
    expect(await names()).toEqual(['first.txt']);

    await writeFile(join(dir, 'second.txt'), 'two');
    await serve.child.waitForLine(/registered "second\.txt"/);
    await rm(join(dir, 'first.txt'));
    await serve.child.waitForLine(/deregistered "first\.txt"/);
    expect(await names()).toEqual(['second.txt']);

    serve.child.kill('SIGINT');
    expect((await serve.child.waitExit()).code).toBe(0);
    expect(await names()).toEqual([]);
  });

  it('fails with one line when the folder is missing or the port is taken', async () => {
    const { addr } = await fx.indexBin();
    const missing = await fx.run(PEER_BIN, ['serve', '--dir', '/definitely/not/here', '--port', '0', '--index', addr]);
    expect(expectOneLineFailure(missing)).toContain('/definitely/not/here');

    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    fx.track(() => new Promise<void>((resolve) => taken.close(() => resolve())));
    const port = (taken.address() as net.AddressInfo).port;
    const dir = await fx.tempDir();
    const busy = await fx.run(PEER_BIN, ['serve', '--dir', dir, '--port', String(port), '--host', '127.0.0.1', '--index', addr]);
    expect(expectOneLineFailure(busy)).toContain(String(port));
  });
});
