/** The paced listing sender, with a real registry and a send that only records. */
import { describe, expect, it } from 'vitest';
import { createIndexHandler } from '../../src/index/handler.js';
import { ListStreamer } from '../../src/index/list-streamer.js';
import { Registry } from '../../src/index/registry.js';
import { TokenBuckets } from '../../src/index/token-buckets.js';
import { decodeIndexReply } from '../../src/protocol/index-messages.js';

const until = async (cond: () => boolean, ms = 5000) => {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
};

function fill(servers: number, namesEach: number, now = 0): Registry {
  const r = new Registry({ ttlMs: 60_000, maxPerPrefix: Infinity });
  for (let s = 0; s < servers; s++) {
    const addr = `10.0.${s >> 8}.${s & 255}`;
    for (let n = 0; n < namesEach; n++) r.register({ port: 9100, addr, filename: `s${s}-n${n}` }, addr, now);
  }
  return r;
}

/** Parses an O sequence into `addr;port;name` strings, checking counts and ids. */
function names(pdus: Buffer[]): string[] {
  const fields = pdus.map((p) => {
    const r = decodeIndexReply(p);
    if (r.type !== 'O') throw new Error('not an O');
    return r.fields;
  });
  const out: string[] = [];
  let i = 1;
  for (let s = 0; s < Number(fields[0][0]); s++) {
    const [addr, port, packets] = fields[i++];
    for (let p = 0; p < Number(packets); p++) {
      const [id, ...ns] = fields[i++];
      expect(id).toBe(String(p));
      out.push(...ns.map((n) => `${addr};${port};${n}`));
    }
  }
  expect(i).toBe(pdus.length);
  return out;
}

describe('ListStreamer', () => {
  it('sends the whole listing, in slices, exactly as the registry holds it', async () => {
    const registry = fill(300, 10);
    const sent: Buffer[] = [];
    const ended: [string, number, boolean][] = [];
    const streamer = new ListStreamer({
      registry,
      replyBudget: new TokenBuckets({ perSecond: 0, burst: 0 }),
      maxJobs: 4,
      send: (pdu) => sent.push(pdu),
      onEnd: (...a) => ended.push(a),
    });
    expect(streamer.start('10.1.1.1', '10.1.1.1', 5000, 1)).toBe(true);
    expect(sent).toEqual([]); // nothing is sent inside start()
    await until(() => ended.length > 0);
    expect(ended).toEqual([['10.1.1.1', sent.length, true]]);
    const got = names(sent);
    expect(got).toHaveLength(3000);
    expect(new Set(got)).toEqual(new Set([...registry.servers(1)].flatMap((s) => s.names.map((n) => `${s.addr};${s.port};${n}`))));
    expect(streamer.active).toBe(0);
    streamer.close();
  });

  it('packs exactly as the handler does: the same PDUs, byte for byte', async () => {
    const registry = new Registry({ ttlMs: 60_000 });
    // Names of every length 1..25 bytes (some multi-byte), enough for 3-digit packet ids.
    for (let i = 0; i < 1500; i++) {
      const name = `${i}-${'é'.repeat(i % 7)}${'x'.repeat(i % 13)}`.slice(0, 25);
      registry.register({ port: 9100 + (i % 2), addr: '10.0.0.1', filename: name }, '10.0.0.1', 0);
    }
    const handle = createIndexHandler({ registry, maxListPdusAtOnce: Infinity, maxListPdusUnproven: Infinity });
    const whole = handle(Buffer.from('O'.padEnd(100, '\0')), '10.0.0.1', 1).replies;
    expect(whole.length).toBeGreaterThan(350); // two servers of about 188 packets: ids up to 3 digits
    const sent: Buffer[] = [];
    let done = false;
    const streamer = new ListStreamer({ registry, replyBudget: new TokenBuckets({ perSecond: 0, burst: 0 }), maxJobs: 1, send: (p) => sent.push(p), onEnd: () => (done = true) });
    streamer.start('a', 'a', 1, 1);
    await until(() => done);
    expect(sent).toEqual(whole);
  });

  it('keeps one job per address and at most maxJobs in all', () => {
    const registry = fill(50, 40);
    const ended: [string, number, boolean][] = [];
    const budget = new TokenBuckets({ perSecond: 1000, burst: 100 }); // one PDU a second per address
    const streamer = new ListStreamer({ registry, replyBudget: budget, maxJobs: 2, send: () => {}, onEnd: (...a) => ended.push(a) });
    expect(streamer.start('a', 'a', 1, 0)).toBe(true);
    expect(streamer.start('b', 'b', 1, 0)).toBe(true);
    expect(streamer.start('c', 'c', 1, 0)).toBe(false);
    expect(streamer.start('a', 'a', 2, 0)).toBe(true); // starts a's listing again
    expect(ended).toEqual([['a', 0, false]]);
    expect(streamer.active).toBe(2);
    streamer.close();
    expect(streamer.start('c', 'c', 1, 0)).toBe(false);
  });

  it('sends no more than the byte bucket allows', async () => {
    const registry = fill(20, 100);
    let sent = 0;
    const budget = new TokenBuckets({ perSecond: 10_000, burst: 1000 }); // 100 PDUs/s, 10 at once
    const streamer = new ListStreamer({ registry, replyBudget: budget, maxJobs: 1, send: () => sent++ });
    const t0 = performance.now();
    streamer.start('a', 'a', 1, 0);
    await new Promise((r) => setTimeout(r, 300));
    const elapsed = performance.now() - t0;
    streamer.close();
    expect(sent).toBeGreaterThanOrEqual(10);
    expect(sent).toBeLessThanOrEqual(10 + Math.ceil((elapsed / 1000) * 100));
  });
});
