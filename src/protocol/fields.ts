/**
 * Field rules of PROTOCOL.md section 1, as pure checks. Each returns a reason string when the
 * value breaks a rule and `undefined` when it is fine, so handlers can put the reason into an
 * `E 4` reply and the CLI can print it.
 */
import { isIP } from 'node:net';

export const FILENAME_MAX_BYTES = 25;
export const SHA256_TEXT_LENGTH = 43;

/** C0 controls, DEL and C1 controls: the characters a terminal may act on. */
export const isControlChar = (cp: number): boolean => cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f);

/**
 * UTF-8 length of a string, as Buffer.byteLength(text, 'utf8') counts it (a lone surrogate is
 * 3 bytes, the replacement character it becomes), without a call into native code: names
 * are short and checked on every index request.
 */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

export function filenameProblem(name: string): string | undefined {
  const bytes = utf8Length(name);
  if (bytes === 0) return 'name is empty';
  if (bytes > FILENAME_MAX_BYTES) return `name is ${bytes} bytes, the limit is ${FILENAME_MAX_BYTES}`;
  if (name === '.' || name === '..') return `name may not be "${name}"`;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x2f || c === 0x5c) return 'name may not contain "/" or "\\"';
    if (c === 0x3b) return 'name may not contain ";"';
    if (isControlChar(c)) return 'name may not contain control characters';
    // A lone surrogate cannot be encoded as UTF-8 and would not survive the round trip.
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = name.charCodeAt(i + 1);
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return 'name is not valid Unicode';
      i++;
    }
  }
  return undefined;
}

/** Parses a port field: decimal digits (leading zeros allowed), value 1..65535. */
export function parsePort(text: string): number | undefined {
  const value = parseCount(text);
  return value !== undefined && value >= 1 && value <= 65535 ? value : undefined;
}

/** Parses a non-negative decimal integer field (counts, offsets, sizes). */
export function parseCount(text: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (text.length === 0 || text.length > 16) return undefined;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    value = value * 10 + d;
  }
  return value <= max ? value : undefined;
}

/**
 * The one text form of an address, so that comparisons are by address, not by spelling:
 * `::ffff:a.b.c.d` is the IPv4 address a.b.c.d (dual-stack sockets report it that way), and
 * other IPv6 text is put in RFC 5952 form (`0:0:0:0:0:0:0:1` and `::1` are the same host).
 */
export function normalizeAddress(addr: string): string {
  if (!addr.includes(':')) return addr; // IPv4 (or not an address at all): already canonical
  if (addr.length > 7 && addr.toLowerCase().startsWith('::ffff:')) {
    const v4 = addr.slice(7);
    if (isIP(v4) === 4) return v4;
  }
  if (isIP(addr) !== 6 || addr.includes('%')) return addr; // zone ids have no canonical form here
  const canonical = new URL(`http://[${addr}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical); // ::ffff:7f00:1
  if (!mapped) return canonical;
  const [hi, lo] = [parseInt(mapped[1], 16), parseInt(mapped[2], 16)];
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

export const isAddress = (addr: string): boolean => isIP(addr) !== 0;

/** sha256 field: exactly 43 base64url characters. */
export function isSha256Text(text: string): boolean {
  if (text.length !== SHA256_TEXT_LENGTH) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const ok = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 95;
    if (!ok) return false;
  }
  // 43 characters carry 258 bits, 2 more than the digest; the protocol asks for exactly 43
  // base64url characters, so those 2 bits are not checked (the index echoes the text as sent).
  return true;
}

/** Joins host and port for messages: `127.0.0.1:9000`, `[::1]:9000`. */
export const formatHostPort = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
