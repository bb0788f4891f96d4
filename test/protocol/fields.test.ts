import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FILENAME_MAX_BYTES, filenameProblem, formatHostPort, isAddress, isControlChar, isSha256Text, normalizeAddress, parseCount, parsePort } from '../../src/protocol/fields.js';
import { createHash } from 'node:crypto';

const digestOf = (text: string) => createHash('sha256').update(text).digest('base64url');

describe('filenameProblem', () => {
  it('accepts plain base names, including UTF-8 ones', () => {
    for (const ok of ['a', 'a.txt', '...', '.hidden', 'a..b', 'x y', 'naïve.txt', '日本語.txt', '😀', '-rf', 'A'.repeat(25), 'é'.repeat(12)]) {
      expect(filenameProblem(ok), ok).toBeUndefined();
    }
  });

  it('refuses empty names, "." and ".."', () => {
    expect(filenameProblem('')).toMatch(/empty/);
    expect(filenameProblem('.')).toBeDefined();
    expect(filenameProblem('..')).toBeDefined();
  });

  it('counts the 25-byte limit in UTF-8 bytes', () => {
    expect(FILENAME_MAX_BYTES).toBe(25);
    expect(filenameProblem('a'.repeat(25))).toBeUndefined();
    expect(filenameProblem('a'.repeat(26))).toMatch(/26 bytes/);
    expect(filenameProblem('é'.repeat(12) + 'a')).toBeUndefined(); // 25 bytes
    expect(filenameProblem('é'.repeat(13))).toMatch(/26 bytes/); // 13 chars, 26 bytes
    expect(filenameProblem('€'.repeat(8) + 'a')).toBeUndefined(); // 25 bytes
    expect(filenameProblem('€'.repeat(9))).toBeDefined(); // 27 bytes
    expect(filenameProblem('😀'.repeat(6) + 'a')).toBeUndefined(); // 25 bytes
    expect(filenameProblem('😀'.repeat(6) + 'ab')).toBeDefined(); // 26 bytes
  });

  it('refuses path separators and ";"', () => {
    for (const bad of ['a/b', '/', '../x', 'a\\b', '\\', 'a;b', ';']) expect(filenameProblem(bad), bad).toBeDefined();
  });

  it('refuses C0 controls, DEL and C1 controls, and nothing else near them', () => {
    for (let cp = 0; cp <= 0xa0; cp++) {
      const name = `a${String.fromCharCode(cp)}b`;
      const control = cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f);
      const special = cp === 0x2f || cp === 0x5c || cp === 0x3b;
      expect(filenameProblem(name) !== undefined, `U+${cp.toString(16)}`).toBe(control || special);
      expect(isControlChar(cp)).toBe(control);
    }
    expect(filenameProblem('\u001b[31mred')).toMatch(/control/);
    expect(filenameProblem('a\u0085')).toMatch(/control/);
    expect(filenameProblem('a\u009b2J')).toMatch(/control/);
    expect(filenameProblem('a\u007f')).toMatch(/control/);
  });

  it('refuses lone surrogates, which cannot be UTF-8', () => {
    expect(filenameProblem('a\ud800')).toBeDefined();
    expect(filenameProblem('\udc00a')).toBeDefined();
    expect(filenameProblem('\ud83d\ud83d')).toBeDefined();
    expect(filenameProblem('\ud83d\ude00')).toBeUndefined();
  });

  it('accepts exactly the names whose UTF-8 bytes are 1..25 and free of forbidden characters', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 30 }), (name) => {
        const bytes = Buffer.byteLength(name);
        const cps = [...name].map((c) => c.codePointAt(0)!);
        const expectedOk =
          bytes >= 1 &&
          bytes <= 25 &&
          name !== '.' &&
          name !== '..' &&
          cps.every((cp) => !isControlChar(cp) && cp !== 0x2f && cp !== 0x5c && cp !== 0x3b && !(cp >= 0xd800 && cp <= 0xdfff));
        expect(filenameProblem(name) === undefined).toBe(expectedOk);
      }),
    );
  });
});

describe('parsePort', () => {
  it('accepts 1..65535 in decimal digits', () => {
    expect(parsePort('1')).toBe(1);
    expect(parsePort('9100')).toBe(9100);
    expect(parsePort('65535')).toBe(65535);
    expect(parsePort('000080')).toBe(80); // leading zeros are still decimal digits
  });

  it('refuses 0, 65536 and anything but digits', () => {
    for (const bad of ['', '0', '00000', '65536', '99999', '100000', '-1', '+80', ' 80', '80 ', '8o', '0x50', '1e3', '80.0', '８０', '٨٠']) {
      expect(parsePort(bad), bad).toBeUndefined();
    }
  });

  it('matches a reference parser for any short string', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 7 }), fc.integer({ min: -10, max: 70000 }).map(String)), (text) => {
        const ref = /^[0-9]{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65535 ? Number(text) : undefined;
        expect(parsePort(text)).toBe(ref);
      }),
    );
  });
});

describe('parseCount', () => {
  it('parses non-negative decimal integers up to a maximum', () => {
    expect(parseCount('0')).toBe(0);
    expect(parseCount('123')).toBe(123);
    expect(parseCount('255', 255)).toBe(255);
    expect(parseCount('256', 255)).toBeUndefined();
    expect(parseCount(String(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
    for (const bad of ['', '-1', '1.5', 'x', ' 1', '12345678901234567', '9007199254740992']) expect(parseCount(bad), bad).toBeUndefined();
  });
});

describe('addresses', () => {
  it('turns ::ffff:a.b.c.d into a.b.c.d and leaves other text alone', () => {
    expect(normalizeAddress('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(normalizeAddress('::FFFF:10.1.2.3')).toBe('10.1.2.3');
    expect(normalizeAddress('127.0.0.1')).toBe('127.0.0.1');
    expect(normalizeAddress('::1')).toBe('::1');
    expect(normalizeAddress('0:0:0:0:0:0:0:1')).toBe('::1');
    expect(normalizeAddress('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(normalizeAddress('::ffff:7f00:1')).toBe('127.0.0.1');
    expect(normalizeAddress('::ffff:')).toBe('::ffff:');
    expect(normalizeAddress('::ffff:zz')).toBe('::ffff:zz');
    expect(normalizeAddress('')).toBe('');
  });

  it('accepts dotted IPv4 and IPv6 text only', () => {
    for (const ok of ['127.0.0.1', '10.0.0.255', '::1', 'fe80::1', '2001:db8::8']) expect(isAddress(ok), ok).toBe(true);
    for (const bad of ['', 'localhost', '256.0.0.1', '1.2.3', '1.2.3.4.5', '1.2.3.4:80', 'a::b::c']) expect(isAddress(bad), bad).toBe(false);
  });

  it('formats host:port with brackets for IPv6', () => {
    expect(formatHostPort('127.0.0.1', 9000)).toBe('127.0.0.1:9000');
    expect(formatHostPort('::1', 9000)).toBe('[::1]:9000');
  });
});

describe('isSha256Text', () => {
  it('accepts the unpadded base64url form of a SHA-256 digest', () => {
    const d = digestOf('hello');
    expect(d).toHaveLength(43);
    expect(isSha256Text(d)).toBe(true);
    expect(isSha256Text(digestOf(''))).toBe(true);
    expect(isSha256Text('A'.repeat(43))).toBe(true);
    expect(isSha256Text('_'.repeat(42) + 'w')).toBe(true);
  });

  it('refuses other lengths, padding and the base64 alphabet', () => {
    const d = digestOf('hello');
    expect(isSha256Text(d.slice(0, 42))).toBe(false);
    expect(isSha256Text(d + 'A')).toBe(false);
    expect(isSha256Text(d + '=')).toBe(false);
    expect(isSha256Text(d.slice(0, 42) + '=')).toBe(false);
    expect(isSha256Text('+'.repeat(43))).toBe(false);
    expect(isSha256Text('/'.repeat(43))).toBe(false);
    expect(isSha256Text('A'.repeat(42) + ' ')).toBe(false);
    expect(isSha256Text('A'.repeat(42) + 'B')).toBe(true); // 2 spare bits set: still 43 base64url chars
    expect(isSha256Text('A'.repeat(42) + 'é')).toBe(false);
    expect(isSha256Text('')).toBe(false);
  });

  it('accepts every 32-byte digest and exactly the 43-character base64url texts', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => isSha256Text(Buffer.from(bytes).toString('base64url'))));
    fc.assert(
      fc.property(fc.string({ minLength: 43, maxLength: 43 }), (text) => {
        expect(isSha256Text(text)).toBe(/^[A-Za-z0-9_-]{43}$/.test(text));
      }),
    );
  });
});
