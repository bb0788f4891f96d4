import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { createIndexHandler, type IndexHandler, type IndexHandlerOptions } from '../../src/index/handler.js';
import { Registry } from '../../src/index/registry.js';
import { decodeIndexReply } from '../../src/protocol/index-messages.js';
import { PDU_SIZE } from '../../src/protocol/pdu.js';

const TTL = 90_000;
const A = '10.0.0.1';
const B = '10.0.0.2';
const SHA = createHash('sha256').update('x').digest('base64url');

/** 100 bytes: type letter, data, NUL padding (no field checks: tests send bad requests). */
const pdu = (type: string, data = ''): Buffer => {
  const out = Buffer.alloc(PDU_SIZE);
  out.write(type + data, 'utf8');
  return out;
};
/** A reply as "T data" text, e.g. "A a.txt", "E 3;...". */
const text = (buf: Buffer): string => {
  expect(buf.length).toBe(PDU_SIZE);
  const end = buf.indexOf(0, 1);
  return `${String.fromCharCode(buf[0])} ${buf.toString('utf8', 1, end === -1 ? PDU_SIZE : end)}`;
};
const codeOf = (buf: Buffer): number => {
  const r = decodeIndexReply(buf);
  if (r.type !== 'E') throw new Error(`expected E, got ${text(buf)}`);
  return r.code;
};

function setup(options: Partial<IndexHandlerOptions> & { ttlMs?: number; maxRegistrations?: number; maxPerSource?: number } = {}) {
  const registry = new Registry({ ttlMs: options.ttlMs ?? TTL, maxRegistrations: options.maxRegistrations, maxPerSource: options.maxPerSource });
  const handle = createIndexHandler({ registry, ...options });
  /** Sends one datagram and returns the replies as text. */
  const send = (datagram: Buffer, from = A, now = 0) => handle(datagram, from, now).replies.map(text);
  return { registry, handle, send };
}

/** Parses an O sequence into servers, checking its shape strictly. */
function reassemble(replies: Buffer[]): { addr: string; port: number; names: string[]; packets: string[][] }[] {
  const fields = replies.map((b) => {
    const r = decodeIndexReply(b);
    if (r.type !== 'O') throw new Error(`expected O, got ${text(b)}`);
    return r.fields;
  });
  const numServers = Number(fields[0][0]);
  expect(fields[0]).toHaveLength(1);
  const servers = [];
  let i = 1;
  for (let s = 0; s < numServers; s++) {
    const [addr, port, numPackets] = fields[i++];
    const packets: string[][] = [];
    for (let p = 0; p < Number(numPackets); p++) {
      const [id, ...names] = fields[i++];
      expect(id).toBe(String(p));
      expect(names.length).toBeGreaterThanOrEqual(1);
      expect(names.length).toBeLessThanOrEqual(4);
      packets.push(names);
    }
    servers.push({ addr: addr, port: Number(port), names: packets.flat(), packets });
  }
  expect(i).toBe(fields.length);
  return servers;
}

describe('handler: R, S, T', () => {
  it('answers R with A filename and registers the sender', () => {
    const { handle } = setup();
    const result = handle(pdu('R', '9100;;a.txt'), A, 0);
    expect(result.replies.map(text)).toEqual(['A a.txt']);
    expect(result.replies[0].equals(pdu('A', 'a.txt'))).toBe(true);
    expect(result.event).toEqual({ type: 'registered', holder: { port: 9100, addr: A, filename: 'a.txt', sha256: undefined }, from: A });
    expect(handle(pdu('R', '9100;;a.txt'), A, 1).event?.type).toBe('refreshed');
  });

  it("accepts the sender's own address written out", () => {
    const { send } = setup();
    expect(send(pdu('R', `9100;${A};a.txt`))).toEqual(['A a.txt']);
    expect(send(pdu('R', `9100;::ffff:${A};b`))).toEqual(['A b']);
    expect(send(pdu('S', 'b'))).toEqual([`S 9100;${A};b`]);
  });

  it('answers S with port;addr;filename and the sha256 when the registration has one', () => {
    const { send } = setup();
    send(pdu('R', '9100;;a.txt'));
    expect(send(pdu('S', 'a.txt'))).toEqual([`S 9100;${A};a.txt`]);
    send(pdu('R', `9100;;a.txt;${SHA}`));
    expect(send(pdu('S', 'a.txt'))).toEqual([`S 9100;${A};a.txt;${SHA}`]);
    send(pdu('R', '9100;;a.txt')); // no digest: keeps the one it had
    expect(send(pdu('S', 'a.txt'))).toEqual([`S 9100;${A};a.txt;${SHA}`]);
  });

  it('answers S for an unknown name with E 3', () => {
    const { handle } = setup();
    const r = handle(pdu('S', 'nope'), A, 0);
    expect(r.replies).toHaveLength(1);
    expect(codeOf(r.replies[0])).toBe(3);
    expect(r.event).toEqual({ type: 'searched', filename: 'nope', from: A, found: false });
  });

  it('hands out the holders of a name in turn', () => {
    const { send } = setup();
    const senders = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'];
    for (const s of senders) send(pdu('R', '9100;;shared'), s);
    const got = Array.from({ length: 8 }, () => send(pdu('S', 'shared'), '10.9.9.9')[0]);
    expect(new Set(got.slice(0, 4)).size).toBe(4);
    expect(got.slice(4)).toEqual(got.slice(0, 4));
    expect(new Set(got)).toEqual(new Set(senders.map((s) => `S 9100;${s};shared`)));
  });

  it('answers T with A and removes the registration', () => {
    const { send, handle } = setup();
    send(pdu('R', '9100;;a.txt'));
    const r = handle(pdu('T', '9100;;a.txt'), A, 0);
    expect(r.replies.map(text)).toEqual(['A a.txt']);
    expect(r.event?.type).toBe('deregistered');
    expect(codeOf(handle(pdu('S', 'a.txt'), A, 0).replies[0])).toBe(3);
  });

  it('accepts T with or without a sha256 field', () => {
    const { send } = setup();
    send(pdu('R', `9100;;a;${SHA}`));
    expect(send(pdu('T', `9100;;a;${SHA}`))).toEqual(['A a']);
  });

  it('answers T of a missing registration with E 3', () => {
    const { handle, send } = setup();
    send(pdu('R', '9100;;a.txt'));
    for (const data of ['9100;;b.txt', '9101;;a.txt', `9100;${B};a.txt`]) {
      const r = handle(pdu('T', data), A, 0);
      expect(codeOf(r.replies[0]), data).toBe(3);
      expect(r.event).toMatchObject({ type: 'refused', request: 'T', code: 3 });
    }
  });

  it('refuses T from another address with E 5 and keeps the registration', () => {
    const { send, handle } = setup();
    send(pdu('R', '9100;;a.txt'), A);
    const r = handle(pdu('T', `9100;${A};a.txt`), B, 0);
    expect(codeOf(r.replies[0])).toBe(5);
    expect(r.event).toMatchObject({ type: 'refused', request: 'T', from: B, code: 5 });
    expect(send(pdu('S', 'a.txt'), B)).toEqual([`S 9100;${A};a.txt`]);
    // T with an empty addr from B names B's registration, which does not exist.
    expect(codeOf(handle(pdu('T', '9100;;a.txt'), B, 0).replies[0])).toBe(3);
  });

  it('refuses R claiming another address with E 5 unless claimed addresses are trusted', () => {
    const strict = setup();
    const r = strict.handle(pdu('R', `9100;${B};a.txt`), A, 0);
    expect(codeOf(r.replies[0])).toBe(5);
    expect(r.event).toMatchObject({ type: 'refused', request: 'R', code: 5 });
    expect(codeOf(strict.handle(pdu('S', 'a.txt'), A, 0).replies[0])).toBe(3);

    const trusting = setup({ trustClaimedAddresses: true });
    expect(trusting.send(pdu('R', `9100;${B};a.txt`), A)).toEqual(['A a.txt']);
    expect(trusting.send(pdu('S', 'a.txt'), A)).toEqual([`S 9100;${B};a.txt`]);
    // The registration belongs to the source that made it, not to the address it names.
    expect(codeOf(trusting.handle(pdu('T', `9100;${B};a.txt`), B, 0).replies[0])).toBe(5);
    expect(trusting.send(pdu('T', `9100;${B};a.txt`), A)).toEqual(['A a.txt']);
  });

  it('checks well-formed before exists before permitted', () => {
    const { send, handle } = setup();
    send(pdu('R', '9100;;a.txt'), A);
    const code = (data: string, type = 'T', from = B) => codeOf(handle(pdu(type, data), from, 0).replies[0]);
    // Malformed and claiming another address: E 4 (not E 5).
    expect(code(`0;${A};a.txt`, 'R')).toBe(4);
    expect(code(`9100;${A};a/b`, 'R')).toBe(4);
    // Malformed T of a registration that exists and is not the sender's: E 4.
    expect(code(`9100;${A};a.txt;bad-digest`)).toBe(4);
    // Missing and from the wrong address: E 3 (not E 5).
    expect(code(`9100;${A};b.txt`)).toBe(3);
    // Exists, from the wrong address: E 5.
    expect(code(`9100;${A};a.txt`)).toBe(5);
  });

  it('answers malformed requests with E 4 and a reason, and records the refusal', () => {
    const { handle } = setup();
    for (const [type, data] of [
      ['R', ''],
      ['R', '9100;;'],
      ['R', '70000;;a'],
      ['R', '9100;;a;b;c'],
      ['S', ''],
      ['S', 'a;b'],
      ['T', '9100;x;a'],
      ['R', '9100;;' + 'x'.repeat(26)],
    ] as const) {
      const r = handle(pdu(type, data), A, 0);
      expect(r.replies).toHaveLength(1);
      const reply = decodeIndexReply(r.replies[0]);
      expect(reply).toMatchObject({ type: 'E', code: 4 });
      expect((reply as { description: string }).description.length).toBeGreaterThan(0);
      expect(r.event).toMatchObject({ type: 'refused', request: type, from: A, code: 4 });
    }
  });

  it('answers an R whose S reply would overflow (long IPv6 sender) with E 4 instead of throwing', () => {
    const { handle } = setup();
    const v6 = '2001:db8:1234:5678:9abc:def0:1234:5678';
    const r = handle(pdu('R', `65535;;${'n'.repeat(25)};${SHA}`), v6, 0);
    expect(codeOf(r.replies[0])).toBe(4);
    expect(handle(pdu('R', `65535;;${'n'.repeat(25)}`), v6, 0).replies.map(text)).toEqual([`A ${'n'.repeat(25)}`]);
    expect(handle(pdu('S', 'n'.repeat(25)), v6, 0).replies.map(text)).toEqual([`S 65535;${v6};${'n'.repeat(25)}`]);
  });
});

describe('handler: TTL, leaving, silence', () => {
  it('forgets a registration after the TTL', () => {
    const { send, handle, registry } = setup({ ttlMs: 1000 });
    send(pdu('R', '9100;;a'), A, 0);
    send(pdu('R', '9100;;b'), A, 0);
    expect(send(pdu('S', 'a'), A, 999)).toEqual([`S 9100;${A};a`]);
    expect(codeOf(handle(pdu('S', 'a'), A, 1000).replies[0])).toBe(3);
    expect(reassemble(handle(pdu('O'), A, 1000).replies)).toEqual([]);
    expect(codeOf(handle(pdu('T', '9100;;b'), A, 1000).replies[0])).toBe(3);
    expect(registry.expire(1000)).toBe(1); // a was already dropped by the search
    expect(registry.size).toBe(0);
  });

  it('keeps a registration that is refreshed within the TTL', () => {
    const { send } = setup({ ttlMs: 1000 });
    for (let t = 0; t <= 5000; t += 333) send(pdu('R', '9100;;a'), A, t);
    expect(send(pdu('S', 'a'), A, 5900)).toEqual([`S 9100;${A};a`]);
  });

  it('drops every registration of a sender on E 1, and does not reply', () => {
    const { send, handle } = setup();
    send(pdu('R', '9100;;a'), A);
    send(pdu('R', '9100;;b'), A);
    send(pdu('R', '9200;;a'), A);
    send(pdu('R', '9100;;a'), B);
    const r = handle(pdu('E', '1;bye'), A, 0);
    expect(r.replies).toEqual([]);
    expect(r.event).toMatchObject({ type: 'left', from: A });
    expect((r.event as { holders: unknown[] }).holders).toHaveLength(3);
    expect(send(pdu('S', 'a'), B)).toEqual([`S 9100;${B};a`]);
    expect(send(pdu('S', 'a'), B)).toEqual([`S 9100;${B};a`]);
    expect(codeOf(handle(pdu('S', 'b'), B, 0).replies[0])).toBe(3);
    // Leaving again, or leaving with nothing registered, is silent and has no event.
    expect(handle(pdu('E', '1;bye'), A, 0)).toEqual({ replies: [], event: undefined });
  });

  it('never replies to A or to E', () => {
    const { handle, send } = setup();
    send(pdu('R', '9100;;a'), A);
    for (const d of [pdu('A', 'a'), pdu('A'), pdu('E', '2;retry'), pdu('E', '3;x'), pdu('E', ''), pdu('E', 'junk'), pdu('E', '1;bye')]) {
      expect(handle(d, B, 0).replies).toEqual([]);
    }
    // None of those touched A's registration (only E 1 from A itself would).
    expect(send(pdu('S', 'a'), B)).toEqual([`S 9100;${A};a`]);
  });

  it('drops wrong sizes and unknown types without a reply', () => {
    const { handle } = setup();
    for (const d of [Buffer.alloc(0), Buffer.alloc(99, 0x53), Buffer.alloc(101, 0x53), pdu('X', 'a'), pdu('s', 'a'), pdu('D', 'a'), pdu('C', '1;1;x')]) {
      const r = handle(d, A, 0);
      expect(r.replies).toEqual([]);
      expect(r.event).toEqual({ type: 'dropped', from: A, bytes: d.length });
    }
  });
});

describe('handler: limits', () => {
  it('answers E 6 beyond maxRegistrations', () => {
    const { send, handle } = setup({ maxRegistrations: 2 });
    send(pdu('R', '1;;a'), A);
    send(pdu('R', '1;;b'), B);
    const r = handle(pdu('R', '1;;c'), '10.0.0.3', 0);
    expect(codeOf(r.replies[0])).toBe(6);
    expect(r.event).toMatchObject({ type: 'refused', code: 6 });
    expect(send(pdu('R', '1;;a'), A)).toEqual(['A a']); // refresh still works
  });

  it('answers E 6 beyond maxPerSource, for that source only', () => {
    const { send, handle } = setup({ maxPerSource: 3 });
    for (const n of ['a', 'b', 'c']) expect(send(pdu('R', `1;;${n}`), A)).toEqual([`A ${n}`]);
    expect(codeOf(handle(pdu('R', '1;;d'), A, 0).replies[0])).toBe(6);
    expect(send(pdu('R', '1;;d'), B)).toEqual(['A d']);
  });
});

describe('handler: the O sequence', () => {
  it('answers an empty index with a single O "0"', () => {
    const { handle } = setup();
    const r = handle(pdu('O'), A, 0);
    expect(r.replies.map(text)).toEqual(['O 0']);
    expect(r.replies[0].equals(pdu('O', '0'))).toBe(true);
    expect(r.event).toEqual({ type: 'listed', from: A, pdus: 1 });
  });

  it('ignores the data of an O', () => {
    const { send } = setup();
    expect(send(pdu('O', 'whatever;1;2'))).toEqual(['O 0']);
    const junk = pdu('O');
    junk.fill(0xff, 1);
    expect(send(junk)).toEqual(['O 0']);
  });

  it('lists one server with a few names as count, header, one packet', () => {
    const { send } = setup();
    for (const n of ['a', 'b', 'c']) send(pdu('R', `9100;;${n}`));
    expect(send(pdu('O'))).toEqual(['O 1', `O ${A};9100;1`, 'O 0;a;b;c']);
  });

  it('lists several servers, at most 4 names a packet, fewer when names are long', () => {
    const { send, handle } = setup({ trustClaimedAddresses: true });
    const short = Array.from({ length: 9 }, (_, i) => `s${i}`);
    const long = Array.from({ length: 7 }, (_, i) => `${i}`.padEnd(25, 'L'));
    for (const n of short) send(pdu('R', `9100;${A};${n}`), A);
    for (const n of long) send(pdu('R', `9200;${B};${n}`), A);
    send(pdu('R', `9100;${B};only`), A);
    const replies = handle(pdu('O'), A, 0).replies;
    const texts = replies.map(text);
    expect(texts[0]).toBe('O 3');
    expect(texts[1]).toBe(`O ${A};9100;3`);
    expect(texts.slice(2, 5)).toEqual(['O 0;s0;s1;s2;s3', 'O 1;s4;s5;s6;s7', 'O 2;s8']);
    expect(texts[5]).toBe(`O ${B};9200;3`);
    expect(texts.slice(6, 9)).toEqual([`O 0;${long.slice(0, 3).join(';')}`, `O 1;${long.slice(3, 6).join(';')}`, `O 2;${long[6]}`]);
    expect(texts.slice(9)).toEqual([`O ${B};9100;1`, 'O 0;only']);
    const servers = reassemble(replies);
    expect(servers.map((s) => [s.addr, s.port, s.names])).toEqual([
      [A, 9100, short],
      [B, 9200, long],
      [B, 9100, ['only']],
    ]);
  });

  it('lists every live registration exactly once for random contents', () => {
    const name = fc.stringMatching(/^[a-zA-Z0-9._-]{1,25}$/).filter((s) => s !== '.' && s !== '..');
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(A, B, '10.0.0.3'), fc.integer({ min: 1, max: 3 }), name), { maxLength: 60, size: 'max' }), (regs) => {
        const { send, handle } = setup({ maxListPdusUnproven: Infinity });
        for (const [from, port, n] of regs) send(pdu('R', `${port};;${n}`), from);
        const got = reassemble(handle(pdu('O'), A, 0).replies).flatMap((s) => s.names.map((n) => `${s.addr}|${s.port}|${n}`));
        const want = new Set(regs.map(([from, port, n]) => `${from}|${port}|${n}`));
        expect(got.length).toBe(want.size);
        expect(new Set(got)).toEqual(want);
      }),
      { numRuns: 100 },
    );
  });

  it('sends a big listing only to an address that holds a registration', () => {
    const { send, handle } = setup({ maxListPdusUnproven: 5 });
    for (let i = 0; i < 20; i++) send(pdu('R', `9100;;n${i}`), A); // 1 + 1 + 5 = 7 PDUs
    const stranger = handle(pdu('O'), '10.9.9.9', 0);
    expect(stranger.replies).toHaveLength(1);
    expect(codeOf(stranger.replies[0])).toBe(6);
    expect(reassemble(handle(pdu('O'), A, 0).replies)[0].names).toHaveLength(20);
  });
});

describe('handler: robustness', () => {
  it('never throws, and every reply is a 100-byte PDU a client can decode', () => {
    const { handle } = setup({ maxRegistrations: 50 });
    const typed = fc
      .tuple(
        fc.constantFrom('R', 'S', 'T', 'O', 'A', 'E'),
        fc.array(fc.oneof(fc.constantFrom('', '1', '9100', A, B, '::1', SHA, 'a', 'x'.repeat(25)), fc.string({ maxLength: 12 })), { maxLength: 5 }),
      )
      .map(([t, parts]) => {
        const out = Buffer.alloc(PDU_SIZE);
        out.write(t, 0, 'latin1');
        Buffer.from(parts.join(';')).copy(out, 1, 0, 99);
        return out;
      });
    const handler: IndexHandler = handle;
    fc.assert(
      fc.property(
        fc.oneof(
          typed,
          fc.uint8Array({ minLength: 100, maxLength: 100 }).map((b) => Buffer.from(b)),
          fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b)),
        ),
        fc.constantFrom(A, B, '::1', '2001:db8:1234:5678:9abc:def0:1234:5678'),
        fc.integer({ min: 0, max: 200_000 }),
        (datagram, from, now) => {
          const { replies } = handler(datagram, from, now);
          for (const reply of replies) {
            expect(reply.length).toBe(PDU_SIZE);
            expect(['A', 'S', 'E', 'O']).toContain(decodeIndexReply(reply).type);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});
