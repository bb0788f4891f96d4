/**
 * Fetches one piece from one holder into memory (for second opinions when a download does
 * not match its digest). One connection per holder is kept in `conns` and reused.
 */
import { Writable } from 'node:stream';
import { PeerdexError } from '../../protocol/errors.js';
import type { Holder } from '../../protocol/index-messages.js';
import { ContentConnection } from '../content-client.js';
import { holderKey } from './holder-source.js';

export async function fetchPieceInMemory(
  conns: Map<string, ContentConnection>,
  holder: Holder,
  filename: string,
  range: { offset: number; length: number },
  sha256: string,
  timeoutMs: number,
): Promise<Buffer> {
  const key = holderKey(holder);
  let conn = conns.get(key);
  if (!conn) {
    conn = await ContentConnection.open(holder.addr, holder.port, { idleTimeoutMs: timeoutMs });
    conns.set(key, conn);
  }
  try {
    const header = await conn.request(filename, range.offset, range.length);
    if (header.sha256 !== sha256 || header.size !== range.length) {
      throw new PeerdexError('ERR_INTEGRITY', `holder ${key} answered with other content (${header.size} bytes, SHA-256 ${header.sha256})`);
    }
    const out = Buffer.allocUnsafe(range.length);
    let used = 0;
    const sink = new Writable({
      write(chunk: Buffer, _enc, callback) {
        used += chunk.copy(out, used);
        callback();
      },
    });
    await conn.receive(sink);
    return out;
  } catch (err) {
    conn.close();
    conns.delete(key);
    throw err;
  }
}
