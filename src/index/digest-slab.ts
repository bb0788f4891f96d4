/**
 * The sha256 of each registration slot, packed: 33 bytes a slot (the 32 digest bytes, then the
 * last base64url character exactly as it was sent) and a flag for "has one". 43 characters
 * carry 2 bits more than 32 bytes, and S must echo the text R gave, so that last character is
 * kept as sent rather than re-derived.
 */
const SLOT_BYTES = 33;
const TEXT_LENGTH = 43; // base64url without padding

const BASE64URL = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', 'latin1');
const scratch = Buffer.alloc(TEXT_LENGTH + 1);

export class DigestSlab {
  #bytes = new Uint8Array(0);
  #has = new Uint8Array(0);

  /** Makes room for `capacity` slots, keeping what is stored. */
  grow(capacity: number): void {
    const bytes = new Uint8Array(capacity * SLOT_BYTES);
    bytes.set(this.#bytes);
    const has = new Uint8Array(capacity);
    has.set(this.#has);
    this.#bytes = bytes;
    this.#has = has;
  }

  set(slot: number, text: string): void {
    const at = slot * SLOT_BYTES;
    Buffer.from(this.#bytes.buffer, at, 32).write(text, 'base64url');
    this.#bytes[at + 32] = text.charCodeAt(TEXT_LENGTH - 1);
    this.#has[slot] = 1;
  }

  clear(slot: number): void {
    this.#has[slot] = 0;
  }

  /**
   * The text stored for `slot`. Every S answer carries one, so it is encoded here in plain
   * JavaScript into a scratch buffer: the text Buffer#toString('base64url') would give, without
   * wrapping the bytes in a new Buffer first.
   */
  get(slot: number): string | undefined {
    if (!this.#has[slot]) return undefined;
    const bytes = this.#bytes;
    const at = slot * SLOT_BYTES;
    let out = 0;
    for (let i = at; i < at + 30; i += 3) {
      const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
      scratch[out++] = BASE64URL[n >> 18]!;
      scratch[out++] = BASE64URL[(n >> 12) & 63]!;
      scratch[out++] = BASE64URL[(n >> 6) & 63]!;
      scratch[out++] = BASE64URL[n & 63]!;
    }
    const n = (bytes[at + 30] << 8) | bytes[at + 31]; // the last 2 bytes: 2 characters and 4 bits
    scratch[out++] = BASE64URL[n >> 10]!;
    scratch[out++] = BASE64URL[(n >> 4) & 63]!;
    scratch[out] = bytes[at + 32]!; // the last character, as sent
    return scratch.toString('latin1', 0, TEXT_LENGTH);
  }
}
