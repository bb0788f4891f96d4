/** escapeForTerminal: what a name may not do to a terminal or a log line. */
import { describe, expect, it } from 'vitest';
import { escapeForTerminal, isInvisibleFormatChar } from '../../src/cli/output.js';

const hex = (cp: number) => cp.toString(16).padStart(4, '0');

const invisible: Array<[string, number[]]> = [
  ['bidi embeddings and overrides (LRE, RLE, PDF, LRO, RLO)', [0x202a, 0x202b, 0x202c, 0x202d, 0x202e]],
  ['bidi isolates (LRI, RLI, FSI, PDI)', [0x2066, 0x2067, 0x2068, 0x2069]],
  ['bidi marks (LRM, RLM, ALM)', [0x200e, 0x200f, 0x061c]],
  ['zero-width space, non-joiner, joiner, word joiner, BOM', [0x200b, 0x200c, 0x200d, 0x2060, 0xfeff]],
  ['line and paragraph separators', [0x2028, 0x2029]],
];

describe('escapeForTerminal', () => {
  it.each(invisible)('shows %s as \\uXXXX', (_what, cps) => {
    for (const cp of cps) {
      const name = `a${String.fromCodePoint(cp)}b.txt`;
      expect(escapeForTerminal(name)).toBe(`a\\u${hex(cp)}b.txt`);
      expect(isInvisibleFormatChar(cp)).toBe(true);
    }
  });

  it('turns a name that would reverse the line into plain visible text', () => {
    const trick = 'invoice\u202Efdp.exe'; // shows as "invoiceexe.pdf" on a bidi-aware terminal
    expect(escapeForTerminal(trick)).toBe('invoice\\u202efdp.exe');
    expect(escapeForTerminal('a\u2028b\u2029c')).toBe('a\\u2028b\\u2029c');
  });

  it('still escapes control characters as \\xNN, and lone surrogates as \\uXXXX', () => {
    expect(escapeForTerminal('\x1b[31mred\x07\x7f\x85')).toBe('\\x1b[31mred\\x07\\x7f\\x85');
    expect(escapeForTerminal('a\ud800b\udfffc')).toBe('a\\ud800b\\udfffc');
  });

  it('leaves other text alone, neighbours of the escaped ranges included', () => {
    const plain = 'café 日本語 😀 שלום مرحبا a-b_c.txt \u00a0\u200a\u2010\u2027\u202f\u2061\u2065\u206a';
    expect(escapeForTerminal(plain)).toBe(plain);
    for (const cp of [0x061b, 0x061d, 0x200a, 0x2010, 0x2027, 0x202f, 0x205f, 0x2061, 0x2065, 0x206a, 0xfefe, 0xff00]) {
      expect(isInvisibleFormatChar(cp)).toBe(false);
    }
  });
});
