/** ListAssembler: putting the O sequence back together, with losses, gaps and retries. */
import { describe, expect, it } from 'vitest';
import { ListAssembler } from '../../src/peer/list-assembler.js';

/** Feeds PDUs given as their data text ('2', '127.0.0.1;7001;1', '0;a;b'). */
function feed(a: ListAssembler, ...pdus: string[]): ListAssembler {
  for (const p of pdus) a.add(p.split(';'));
  return a;
}

const serverA = ['127.0.0.1;7001;2', '0;a1;a2;a3;a4', '1;a5'];
const serverB = ['10.0.0.2;7002;1', '0;b1'];
const serverC = ['::1;7003;1', '0;c1;c2'];

describe('ListAssembler', () => {
  it('has no result before the count arrives', () => {
    expect(feed(new ListAssembler(), ...serverA).result()).toBeUndefined();
  });

  it('takes an empty index (count 0) as an empty listing', () => {
    expect(feed(new ListAssembler(), '0').result()).toEqual([]);
  });

  it('assembles several servers, each with its own packet ids', () => {
    const a = feed(new ListAssembler(), '3', ...serverA, ...serverB, ...serverC);
    expect(a.result()).toEqual([
      { addr: '127.0.0.1', port: 7001, names: ['a1', 'a2', 'a3', 'a4', 'a5'] },
      { addr: '10.0.0.2', port: 7002, names: ['b1'] },
      { addr: '::1', port: 7003, names: ['c1', 'c2'] },
    ]);
  });

  it('is incomplete when a server header is lost (its packets cannot be placed)', () => {
    const a = feed(new ListAssembler(), '2', ...serverA, ...serverB.slice(1));
    expect(a.result()).toBeUndefined();
  });

  it('is incomplete when a packet is lost (gap in the ids)', () => {
    const a = feed(new ListAssembler(), '2', serverA[0], serverA[2], ...serverB);
    expect(a.result()).toBeUndefined();
  });

  it('does not count a server whose last packet is lost', () => {
    const a = feed(new ListAssembler(), '2', ...serverA.slice(0, 2), ...serverB);
    expect(a.result()).toBeUndefined();
  });

  it("does not credit a lost packet of one server with the next server's packets", () => {
    // A's packet 1 is lost and B's header too: B's packet 0 must not be taken as A's.
    const a = feed(new ListAssembler(), '1', serverA[0], serverA[1], '0;b1');
    expect(a.result()).toBeUndefined();
  });

  it('is incomplete while fewer servers than the count are in', () => {
    expect(feed(new ListAssembler(), '3', ...serverA, ...serverB).result()).toBeUndefined();
  });

  it('merges complete servers across attempts', () => {
    const a = new ListAssembler();
    a.startAttempt();
    feed(a, '2', ...serverA, serverB[0]); // B's packet lost
    expect(a.result()).toBeUndefined();
    a.startAttempt();
    feed(a, '2', serverA[0], ...serverB); // this time A's packets are lost
    expect(a.result()).toEqual([
      { addr: '127.0.0.1', port: 7001, names: ['a1', 'a2', 'a3', 'a4', 'a5'] },
      { addr: '10.0.0.2', port: 7002, names: ['b1'] },
    ]);
  });

  it('does not finish a group left open by an earlier attempt with packets of a new one', () => {
    const a = new ListAssembler();
    a.startAttempt();
    feed(a, '1', serverA[0], serverA[1]); // the attempt ends with A half done
    a.startAttempt();
    feed(a, '1'); // the new attempt's count arrives, then only a stray packet
    feed(a, serverA[2]);
    expect(a.result()).toBeUndefined();
  });

  it('takes the same server twice as one', () => {
    const a = feed(new ListAssembler(), '2', ...serverA, ...serverA);
    expect(a.result()).toBeUndefined();
    feed(a, ...serverB);
    expect(a.result()).toHaveLength(2);
  });

  it('ignores malformed PDUs', () => {
    const a = feed(new ListAssembler(), 'x', '127.0.0.1;99999;1', '0;lost', '1', 'not-an-addr;7001;1', '0;stray', ...serverB);
    expect(a.result()).toEqual([{ addr: '10.0.0.2', port: 7002, names: ['b1'] }]);
  });

  it('ignores a duplicated datagram and accepts two neighbours that swapped places', () => {
    const three = ['127.0.0.1;7004;3', '0;d1', '1;d2', '2;d3'];
    const a = feed(new ListAssembler(), '1', three[0], three[1], three[1], three[3], three[2]);
    expect(a.result()).toEqual([{ addr: '127.0.0.1', port: 7004, names: ['d1', 'd2', 'd3'] }]);
  });

  it("does not take the next server's first packet for the current server's", () => {
    // B's header is lost; its packet 0 follows A's packet 1 and must not fill A's gap.
    const a = feed(new ListAssembler(), '2', '127.0.0.1;7001;3', '1;a2', '2;a3', '0;b1');
    expect(a.result()).toBeUndefined();
    a.startAttempt();
    feed(a, '2', '127.0.0.1;7001;3', '0;a1', '1;a2', '2;a3', '10.0.0.2;7002;1', '0;b1');
    expect(a.result()?.[0]?.names).toEqual(['a1', 'a2', 'a3']);
  });

  describe('limits', () => {
    const tooMany = (what: string, limit: number) => ({ code: 'ERR_MALFORMED_PDU', message: `announced ${what} in its listing, over the limit of ${limit}` });

    it('refuses a count of servers over the limit (default 2,000,000)', () => {
      expect(() => feed(new ListAssembler(), '1000000000')).toThrow(expect.objectContaining(tooMany('1000000000 servers', 2_000_000)));
      expect(() => feed(new ListAssembler({ maxServers: 5 }), '6')).toThrow(expect.objectContaining(tooMany('6 servers', 5)));
      expect(feed(new ListAssembler({ maxServers: 5 }), '5').result()).toBeUndefined();
    });

    it('refuses one server announcing more packets than the limit of names', () => {
      expect(() => feed(new ListAssembler(), '1', '127.0.0.1;7001;1000000000')).toThrow(expect.objectContaining(tooMany('1000000000 packets of names', 2_000_000)));
    });

    it('counts the packets announced by all servers together', () => {
      const a = feed(new ListAssembler({ maxNames: 4 }), '3', '127.0.0.1;7001;2', '10.0.0.2;7002;2');
      expect(() => feed(a, '::1;7003;1')).toThrow(expect.objectContaining(tooMany('5 packets of names', 4)));
    });

    it('refuses more distinct server headers than the limit, even without a count', () => {
      const a = feed(new ListAssembler({ maxServers: 2 }), '127.0.0.1;7001;1', '10.0.0.2;7002;1', '127.0.0.1;7001;1');
      expect(() => feed(a, '::1;7003;1')).toThrow(expect.objectContaining(tooMany('3 servers', 2)));
    });

    it('does not count a server twice when its packet count changes between attempts', () => {
      const a = new ListAssembler({ maxNames: 3 });
      feed(a, '1', '127.0.0.1;7001;2', '0;a1');
      a.startAttempt();
      feed(a, '1', '127.0.0.1;7001;3', '0;a1', '1;a2', '2;a3');
      expect(a.result()).toEqual([{ addr: '127.0.0.1', port: 7001, names: ['a1', 'a2', 'a3'] }]);
    });

    it('frees the packets of a server gathered again from scratch', () => {
      const a = new ListAssembler({ maxNames: 3 });
      feed(a, '2', '127.0.0.1;7001;2', '0;a1');
      a.startAttempt();
      feed(a, '2', '127.0.0.1;7001;2', '0;changed'); // the listing changed: A starts over
      feed(a, '10.0.0.2;7002;3', '0;b1', '1;b2', '2;b3');
      expect(a.result()).toBeUndefined();
    });
  });
});
