/**
 * Listing cookies (docs/protocol.md, "Proving an address"): a stateless proof that an
 * address can receive what the index sends it. The index answers an over-limit `O` with
 *
 *   E  6;... prove with cookie 0123456789abcdef
 *
 * and an `O` whose data is that cookie comes from an address that received it. The cookie
 * is the first 8 bytes (16 lowercase hex digits) of HMAC-SHA256(secret, window + address),
 * the window being the current minute; one from the previous minute is still accepted. The
 * secret is drawn per process, so nothing is stored and a restart voids every cookie.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const COOKIE_PATTERN = /cookie ([0-9a-f]{16})\b/;
const COOKIE_TEXT = /^[0-9a-f]{16}$/;

export class ListCookies {
  readonly #secret: Buffer;
  readonly #windowMs: number;

  constructor(options: { secret?: Buffer; windowMs?: number } = {}) {
    this.#secret = options.secret ?? randomBytes(32);
    this.#windowMs = options.windowMs ?? 60_000;
  }

  /** The cookie for `addr` now. */
  issue(addr: string, now: number): string {
    return this.#mac(addr, Math.floor(now / this.#windowMs)).toString('hex');
  }

  /** Whether `text` is the cookie of `addr` for this window or the one before. */
  verify(addr: string, text: string, now: number): boolean {
    if (!COOKIE_TEXT.test(text)) return false;
    const given = Buffer.from(text, 'hex');
    const window = Math.floor(now / this.#windowMs);
    return timingSafeEqual(given, this.#mac(addr, window)) || timingSafeEqual(given, this.#mac(addr, window - 1));
  }

  #mac(addr: string, window: number): Buffer {
    return createHmac('sha256', this.#secret).update(`${window}|${addr}`).digest().subarray(0, 8);
  }
}

/** The cookie an `O` datagram carries in its data (its first field), or undefined. */
export function cookieOfList(datagram: Uint8Array): string | undefined {
  if (datagram.length < 17 || datagram[1] === 0) return undefined;
  let end = 1;
  while (end < datagram.length && end <= 17 && datagram[end] !== 0 && datagram[end] !== 0x3b) end++;
  if (end - 1 !== 16) return undefined;
  return Buffer.from(datagram.buffer, datagram.byteOffset + 1, 16).toString('latin1');
}
