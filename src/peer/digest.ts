/** SHA-256 of files, as the protocol's base64url text (43 characters, no padding). */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** The whole file's SHA-256 as base64url text. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('base64url');
}
