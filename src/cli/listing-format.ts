/**
 * How `peer list` and pattern searches lay names out for people: one block per content server,
 * its names in columns that fit the terminal (column by column, as `ls` does), or one per line.
 */
import { formatHostPort } from '../protocol/fields.js';
import type { ServerListing } from '../peer/list-assembler.js';
import { escapeForTerminal } from './output.js';

const INDENT = '  ';
/** Names sorted as people expect: file-2 before file-10. */
const byName = new Intl.Collator('en', { numeric: true }).compare;
const GAP = 2;

/** Terminal cells a string takes (code points; names are short and rarely double-width). */
const cells = (s: string): number => [...s].length;

/** Lays `items` out in as many columns as fit in `width`, filled column by column. */
export function columns(items: string[], width: number): string[] {
  if (items.length === 0) return [];
  const colWidth = Math.max(...items.map(cells)) + GAP;
  const perRow = Math.max(1, Math.floor((width - INDENT.length + GAP) / colWidth));
  const rows = Math.ceil(items.length / perRow);
  const lines: string[] = [];
  for (let r = 0; r < rows; r++) {
    let line = '';
    for (let c = 0; c < perRow; c++) {
      const item = items[c * rows + r];
      if (item === undefined) continue;
      const last = c === perRow - 1 || (c + 1) * rows + r >= items.length;
      line += last ? item : item + ' '.repeat(colWidth - cells(item));
    }
    lines.push(INDENT + line);
  }
  return lines;
}

/** The blocks of `peer list`: a header line per server, then its names. */
export function listingBlocks(servers: ServerListing[], options: { width: number; long: boolean }): string[] {
  const out: string[] = [];
  for (const s of servers) {
    const names = [...s.names].sort(byName).map(escapeForTerminal);
    out.push('', `${formatHostPort(s.addr, s.port)}  (${names.length} name${names.length === 1 ? '' : 's'})`);
    out.push(...(options.long ? names.map((n) => INDENT + n) : columns(names, options.width)));
  }
  return out;
}

/** Each name that `matches`, with the servers that hold it, in name order. */
export function holdersByName(servers: ServerListing[], matches: (name: string) => boolean): { filename: string; holders: { addr: string; port: number }[] }[] {
  const found = new Map<string, { addr: string; port: number }[]>();
  for (const s of servers) {
    for (const name of s.names) {
      if (!matches(name)) continue;
      let list = found.get(name);
      if (!list) found.set(name, (list = []));
      list.push({ addr: s.addr, port: s.port });
    }
  }
  return [...found].sort(([a], [b]) => byName(a, b)).map(([filename, holders]) => ({ filename, holders }));
}
