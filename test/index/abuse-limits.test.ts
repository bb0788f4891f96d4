/**
 * The pieces that bound abuse of the index, without sockets: token buckets, address prefixes,
 * listing cookies, the refusal summary, and the handler's use of them.
 */
import { describe, expect, it } from 'vitest';
import { addressPrefix } from '../../src/index/address-prefix.js';
import { createIndexHandler } from '../../src/index/handler.js';
import { COOKIE_PATTERN, cookieOfList, ListCookies } from '../../src/index/list-cookie.js';
import { RefusalSummary } from '../../src/index/refusal-summary.js';
import { Registry } from '../../src/index/registry.js';
import { TokenBuckets } from '../../src/index/token-buckets.js';
import { decodeIndexReply } from '../../src/protocol/index-messages.js';
import { PDU_SIZE } from '../../src/protocol/pdu.js';

const pdu = (type: string, data = ''): Buffer => {
  const out = Buffer.alloc(PDU_SIZE);
  out.write(type + data, 'utf8');
  return out;
};
const text = (buf: Buffer): string => {
  const end = buf.indexOf(0, 1);
  return `${String.fromCharCode(buf[0])} ${buf.toString('utf8', 1, end === -1 ? PDU_SIZE : end)}`;
};

describe('TokenBuckets', () => {
  it('allows a burst, then the rate, per key', () => {
    const b = new TokenBuckets({ perSecond: 10, burst: 5 });
    expect(Array.from({ length: 7 }, () => b.take('a', 1, 0))).toEqual([true, true, true, true, true, false, false]);
    expect(b.take('b', 1, 0)).toBe(true);
    expect(b.waitFor('a', 1, 0)).toBe(100);
    expect(b.take('a', 1, 99)).toBe(false);
    expect(b.take('a', 1, 100)).toBe(true);
    expect(b.take('a', 3, 10_000)).toBe(true); // refilled to the burst, not beyond
    expect(b.take('a', 3, 10_000)).toBe(false);
  });

  it('never keeps more than maxKeys buckets', () => {
    const b = new TokenBuckets({ perSecond: 1, burst: 2, maxKeys: 100 });
    for (let i = 0; i < 1000; i++) b.take(`k${i}`, 1, i);
    expect(b.size).toBeLessThanOrEqual(100);
  });

  it('rate 0 means no limit', () => {
    const b = new TokenBuckets({ perSecond: 0, burst: 0 });
    for (let i = 0; i < 100; i++) expect(b.take('a', 1e9, 0)).toBe(true);
    expect(b.size).toBe(0);
  });
});

describe('addressPrefix', () => {
  it.each([
    ['10.1.2.3', '10.1.2.0/24'],
    ['127.0.0.200', '127.0.0.0/24'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:db8:0:0:ffff::3', '2001:db8:0:0::/64'],
    ['2001:db8:0:1::9', '2001:db8:0:1::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['64:ff9b::1.2.3.4', '64:ff9b:0:0::/64'],
  ])('%s is in %s', (addr, prefix) => expect(addressPrefix(addr)).toBe(prefix));
});

describe('ListCookies', () => {
  it('accepts its cookie from the same address within two windows, nothing else', () => {
    const c = new ListCookies({ windowMs: 1000 });
    const cookie = c.issue('10.0.0.1', 5500);
    expect(cookie).toMatch(/^[0-9a-f]{16}$/);
    expect(c.verify('10.0.0.1', cookie, 5999)).toBe(true);
    expect(c.verify('10.0.0.1', cookie, 6999)).toBe(true);
    expect(c.verify('10.0.0.1', cookie, 7000)).toBe(false);
    expect(c.verify('10.0.0.2', cookie, 5500)).toBe(false);
    expect(c.verify('10.0.0.1', cookie.toUpperCase(), 5500)).toBe(false);
    expect(new ListCookies({ windowMs: 1000 }).verify('10.0.0.1', cookie, 5500)).toBe(false); // another secret
  });

  it('reads the cookie from the first field of an O', () => {
    expect(cookieOfList(pdu('O', '0123456789abcdef'))).toBe('0123456789abcdef');
    expect(cookieOfList(pdu('O', '0123456789abcdef;more'))).toBe('0123456789abcdef');
    expect(cookieOfList(pdu('O', '0123456789abcdef0'))).toBeUndefined();
    expect(cookieOfList(pdu('O'))).toBeUndefined();
    expect(cookieOfList(pdu('O', 'short'))).toBeUndefined();
  });
});

describe('RefusalSummary', () => {
  it("says which refusal is a source's first of the interval and counts the rest", () => {
    const s = new RefusalSummary();
    expect(s.note('a', 'R E 6')).toBe(true);
    for (let i = 0; i < 5; i++) expect(s.note('a', 'R E 6')).toBe(false);
    s.note('a', 'dropped');
    expect(s.note('b', 'S E 4')).toBe(true); // only its first: no summary line for b
    expect(s.flush()).toEqual([
      {
        from: 'a',
        total: 6,
        kinds: [
          ['R E 6', 5],
          ['dropped', 1],
        ],
      },
    ]);
    expect(s.note('a', 'R E 6')).toBe(true); // a new interval
    expect(s.flush()).toEqual([]);
  });

  it('counts sources past maxSources together', () => {
    const s = new RefusalSummary({ maxSources: 2 });
    for (const from of ['a', 'b', 'c', 'd', 'd']) s.note(from, 'O E 6');
    expect(s.flush()).toEqual([{ from: undefined, total: 3, kinds: [['O E 6', 3]] }]);
  });
});

describe('handler: rate limits and the listing cookie', () => {
  const A = '10.0.0.1';
  const setup = (options: { registerPerSecond?: number; listPerSecond?: number } = {}) => {
    const registry = new Registry({ ttlMs: 90_000 });
    const cookies = new ListCookies();
    const handle = createIndexHandler({
      registry,
      cookies,
      registerRate: new TokenBuckets({ perSecond: options.registerPerSecond ?? 0, burst: 3 }),
      listRate: new TokenBuckets({ perSecond: options.listPerSecond ?? 0, burst: 2 }),
    });
    return { registry, cookies, handle };
  };

  it('over the R rate only refreshes succeed', () => {
    const { handle } = setup({ registerPerSecond: 1 });
    for (const n of ['a', 'b', 'c']) expect(text(handle(pdu('R', `9100;;${n}`), A, 0).replies[0])).toBe(`A ${n}`);
    const over = handle(pdu('R', '9100;;d'), A, 0);
    expect(text(over.replies[0])).toBe('E 6;too many new registrations from this address, slow down');
    expect(text(handle(pdu('R', '9100;;a'), A, 0).replies[0])).toBe('A a');
    expect(text(handle(pdu('R', '9100;;d'), '10.0.0.2', 0).replies[0])).toBe('A d'); // another source
    expect(text(handle(pdu('R', '9100;;d'), A, 1000).replies[0])).toBe('A d'); // a second later
  });

  it('over the O rate an O is dropped without a reply', () => {
    const { handle } = setup({ listPerSecond: 1 });
    expect(handle(pdu('O'), A, 0).replies).toHaveLength(1);
    expect(handle(pdu('O'), A, 0).replies).toHaveLength(1);
    const dropped = handle(pdu('O'), A, 0);
    expect(dropped.replies).toEqual([]);
    expect(dropped.event).toEqual({ type: 'limited', request: 'O', from: A, reason: 'over the O rate' });
  });

  it('answers a long listing for an unproven address with E 6 and a cookie; the cookie proves it', () => {
    const { registry, handle } = setup();
    for (let i = 0; i < 12; i++) registry.register({ port: 9100, addr: '10.9.9.9', filename: `n${i}` }, '10.9.9.9', 0); // 5 PDUs
    const refused = handle(pdu('O'), A, 0);
    expect(refused.replies).toHaveLength(1);
    const reply = decodeIndexReply(refused.replies[0]);
    expect(reply).toMatchObject({ type: 'E', code: 6 });
    const cookie = COOKIE_PATTERN.exec((reply as { description: string }).description)![1];
    expect(text(refused.replies[0])).toBe(`E 6;over 4 PDUs for an address with no registration: prove with cookie ${cookie}`);
    expect(handle(pdu('O', cookie), A, 10).replies).toHaveLength(5);
    expect(handle(pdu('O', cookie), '10.0.0.2', 10).replies).toHaveLength(1); // another address's cookie
    expect(handle(pdu('O', 'ffffffffffffffff'), A, 10).replies).toHaveLength(1);
  });

  it('streams a listing longer than 64 PDUs instead of building it', () => {
    const { registry, handle } = setup();
    for (let i = 0; i < 400; i++) registry.register({ port: 9100, addr: A, filename: `n${i}` }, A, 0);
    const r = handle(pdu('O'), A, 0);
    expect(r).toEqual({ replies: [], event: { type: 'streaming', from: A, proof: 'registration' }, stream: true });
  });
});
